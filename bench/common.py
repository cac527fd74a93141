"""What every benchmark shares: CPU timing and writing its result."""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def cpu(function: Any, rounds: int = 5) -> float:
    """Best process-CPU seconds of ``rounds`` calls."""
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        function()
        best = min(best, time.process_time() - started)
    return best


def cpu_interleaved(functions: dict[str, Any], rounds: int = 7) -> dict[str, float]:
    """Best process-CPU seconds of each function over ``rounds`` rounds that call them in turn,
    so a slow spell of the machine (or of the heap) weighs on each alike."""
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.process_time()
            function()
            best[name] = min(best[name], time.process_time() - started)
    return best


def parse_ratios(decode_orjson: float, decode_json: float, full: float) -> dict[str, Any]:
    return {
        "cpu_seconds": {
            "orjson_decode": round(decode_orjson, 3),
            "stdlib_json_decode": round(decode_json, 3),
            "decode_parse_normalise": round(full, 3),
        },
        "ratio_to_orjson_decode": round(full / decode_orjson, 2),
        "ratio_to_stdlib_json_decode": round(full / decode_json, 2),
        "target_ratio_to_orjson_decode": 1.5,
    }


def write_result(name: str, result: dict[str, Any]) -> None:
    """Stamp the machine and time, write bench/results/<name>.json, and print it."""
    result = {
        "benchmark": name,
        **result,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
