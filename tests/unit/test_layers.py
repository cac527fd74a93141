"""Parsers never read the clock: their receive time is an argument (the import contracts of the
README's architecture are checked by ``lint-imports`` in scripts/test)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLOCK_READS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}


def clock_reads(source: str) -> list[str]:
    """Calls in ``source`` that read the clock: ``datetime.now()``, ``time.time()`` and the like."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CLOCK_READS:
                found.append(f"line {node.lineno}: {ast.unparse(func)}()")
    return found


def test_the_parsers_never_read_the_clock() -> None:
    assert clock_reads("from datetime import datetime\nx = datetime.now(UTC)\n")  # it finds one
    for path in sorted((REPO / "exporter" / "normalize").glob("*.py")):
        assert not clock_reads(path.read_text()), path.name


def test_the_cli_loads_the_simulator_only_for_movers_sim() -> None:
    probe = (
        "import sys, exporter.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith(('exporter.sim.', 'aiohttp'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "['exporter.sim.cli']"  # its arguments only: no world, no servers
