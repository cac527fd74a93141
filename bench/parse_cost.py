"""The parse-cost measurement of the sweep benchmarks, run in fresh processes.

``python -m bench.parse_cost <polymarket|kalshi> <pages.bin>`` times (process CPU, best of
interleaved rounds) a bare orjson decode, the standard library's ``json`` decode, and the
sweep's own decode + parse + normalise of the pages in the file, and prints the seconds as JSON.
A fresh process holds only the pages: the simulator's heap in the benchmark's own process made
the figures drift by a third between runs. :func:`measure` runs it several times and reports
the median ratio.
"""

from __future__ import annotations

import json
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from bench.common import cpu_interleaved, parse_ratios


def save(pages: list[bytes], path: Path) -> None:
    with path.open("wb") as out:
        for page in pages:
            out.write(struct.pack("<Q", len(page)))
            out.write(page)


def load(path: Path) -> list[bytes]:
    data, pages, at = path.read_bytes(), [], 0
    while at < len(data):
        (size,) = struct.unpack_from("<Q", data, at)
        pages.append(data[at + 8 : at + 8 + size])
        at += 8 + size
    return pages


def measure(venue: str, pages: list[bytes], processes: int = 3) -> dict[str, Any]:
    """The median of ``processes`` fresh processes' figures, each process's ratio listed."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pages.bin"
        save(pages, path)
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-m", "bench.parse_cost", venue, str(path)],
                    check=True, capture_output=True, text=True,
                ).stdout
            )
            for _ in range(processes)
        ]  # fmt: skip
    ratios = [run["full"] / run["orjson"] for run in runs]
    middle = runs[ratios.index(statistics.median(ratios))]
    return {
        **parse_ratios(middle["orjson"], middle["json"], middle["full"]),
        "ratio_to_orjson_decode_each_process": [round(r, 2) for r in ratios],
    }


def main() -> None:
    venue, path = sys.argv[1], Path(sys.argv[2])
    pages = load(path)
    if venue == "polymarket":
        from bench.polymarket_sweep import parse_all as parse_polymarket
        from exporter.categories import load_categories

        categories = load_categories()

        def full() -> object:
            return parse_polymarket(pages, categories)
    else:
        from bench.kalshi_sweep import parse_all as parse_kalshi

        def full() -> object:
            return parse_kalshi(pages)

    timed = cpu_interleaved(
        {
            "orjson": lambda: [orjson.loads(p) for p in pages],
            "json": lambda: [json.loads(p) for p in pages],
            "full": full,
        }
    )
    print(json.dumps(timed))


if __name__ == "__main__":
    main()
