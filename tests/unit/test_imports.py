"""What a command loads: `movers` itself imports neither the simulator nor a server library."""

from __future__ import annotations

import subprocess
import sys


def test_the_cli_loads_no_simulator_and_no_server_library() -> None:
    probe = (
        "import sys, exporter.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('exporter.sim.server', "
        "'exporter.sim.world', 'aiohttp', 'psycopg_pool'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_the_simulators_names_still_load_on_use() -> None:
    from exporter.sim import ManualClock, Simulator, load_scenario

    assert Simulator.__module__ == "exporter.sim.server"
    assert callable(load_scenario)
    assert ManualClock.__name__ == "ManualClock"
