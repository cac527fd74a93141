"""Scale out: Kalshi's price sweep of a 150,000-market universe by one collector, and by three
shards at once, each with a budget of its own (as from three addresses).

``python -m bench.scale_out [--markets 150000] [--rps R]`` (default: Kalshi's shipped budget)
starts the simulator in a process of its own (the venue is a separate server). One collector
discovers the listing and times its price sweep (``kalshi_prices``: every open market's quote
from ``/markets`` pages); three collectors, shards 0, 1 and 2 of 3: the leader discovers the
listing for all (the others read it back, here from memory as they would from the database),
then their price sweeps run at once, each reading its slice of the listing by close time. The
rows are counted, not stored (the writer's own speed is ``bench.writer_vs_copy``'s): the write
load of the three shards is their rows per price cycle against the writer's measured rows per
second.
Target: the three-shard sweep in at most 1/2.5 of one collector's time. Results:
bench/results/scale_out.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.common import RESULTS, write_result
from bench.stack import SIM_START, sim_config
from exporter.categories import load_categories
from exporter.config import validate_settings
from exporter.ingest.common import Rejects
from exporter.ingest.kalshi import KalshiIngest
from exporter.model import MarketStatus, Venue, owner
from exporter.storage.writer import Listed
from exporter.venues.kalshi.client import KalshiClient
from tests.support.servers import free_port


class _CountingWriter:
    """What the Kalshi jobs write, counted and dropped; the markets' listing kept in ``store``
    (shared by the collectors, as their database is), for the followers to read back."""

    def __init__(self, store: dict[str, Listed]) -> None:
        self.snapshots = 0
        self.store = store

    async def upsert_markets(self, rows: Any) -> int:
        for m in rows:
            if m.status is MarketStatus.OPEN:
                self.store[m.native_id] = Listed(
                    m.native_id,
                    m.volume_24h,
                    m.end_time,
                    m.event_id,
                    m.liquidity,
                    m.slug,
                    [m.native_id],
                )
        return len(rows)

    async def open_listing(self, venue: Venue) -> list[Listed]:
        return list(self.store.values())

    async def upsert_outcomes(self, rows: Any) -> int:
        return len(rows)

    async def write_snapshots(self, rows: Any) -> Any:
        self.snapshots += len(rows)
        return type("Written", (), {"written": len(rows)})()

    async def open_market_ids(self, venue: Venue) -> set[str]:
        return set()

    async def set_status(self, *args: Any) -> None:
        return None


def _ingest(
    venues: dict[str, Any], index: int, count: int, store: dict[str, Listed]
) -> tuple[KalshiIngest, Any]:
    settings = validate_settings({"venues": {"polymarket": {"enabled": False}, **venues}})
    config = settings.venues.kalshi
    writer = _CountingWriter(store)
    ingest = KalshiIngest(
        config, KalshiClient(config), writer, load_categories(), Rejects(),  # type: ignore[arg-type]
        owner(Venue.KALSHI, index, count), shard=(index, count),
    )  # fmt: skip
    return ingest, writer


async def _sweep(ingests: list[KalshiIngest]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(i.refresh_prices() for i in ingests))
    return time.perf_counter() - started


async def measure(kalshi: dict[str, Any]) -> dict[str, Any]:
    venues = {"kalshi": kalshi}
    one, one_writer = _ingest(venues, 0, 1, {})
    started = time.perf_counter()
    await one.discover()
    discovery_one = time.perf_counter() - started
    one_writer.snapshots = 0
    alone = await _sweep([one])
    rows_one = one_writer.snapshots
    await one.client.aclose()

    store: dict[str, Listed] = {}
    built = [_ingest(venues, i, 3, store) for i in range(3)]
    shards = [ingest for ingest, _ in built]
    started = time.perf_counter()
    await shards[0].discover()  # the leader lists the venue for everyone
    await asyncio.gather(*(s.refresh_listing() for s in shards[1:]))
    discovery_three = time.perf_counter() - started
    for _, writer in built:
        writer.snapshots = 0
    together = await _sweep(shards)
    rows = [writer.snapshots for _, writer in built]
    for s in shards:
        await s.client.aclose()
    every = validate_settings({}).venues.kalshi.prices_every.total_seconds()
    writer_rows = json.loads((RESULTS / "writer_vs_copy.json").read_text())["writer_rows_per_s"]
    produced = sum(rows) / every
    return {
        "one_collector": {"discovery_seconds": round(discovery_one, 1),
                          "sweep_seconds": round(alone, 1), "rows": rows_one},
        "three_shards": {"discovery_seconds": round(discovery_three, 1),
                         "sweep_seconds": round(together, 1), "rows": rows,
                         "slices": [s.sliced for s in shards],
                         "hot_anywhere": len(shards[0].hot_anywhere)},
        "speedup": round(alone / together, 2),
        "target_speedup": 2.5,
        "write_load": {
            "rows_per_second_at_prices_every": round(produced, 1),
            "prices_every_seconds": every,
            "writer_rows_per_second": writer_rows,
            "share_of_writer": round(produced / writer_rows, 4),
        },
    }  # fmt: skip


def run(markets: int, rps: float | None) -> dict[str, Any]:
    base = free_port() // 10 * 10 % 50_000 + 10_000
    folder = Path(tempfile.mkdtemp(prefix="movers-scale-"))
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({
        "start": SIM_START, "seed": 3, "universe": {"polymarket": 0, "kalshi": markets},
    }))  # fmt: skip
    sim = subprocess.Popen(
        [sys.executable, "-m", "exporter", "sim", "--scenario", str(scenario), "--port", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    kalshi: dict[str, Any] = dict(sim_config(base)["kalshi"])  # type: ignore[call-overload]
    kalshi |= {"requests_per_second": rps, "stream": {"enabled": False}}
    if rps is None:
        del kalshi["requests_per_second"]  # the shipped budget
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                httpx.get(f"{kalshi['rest_url']}/exchange/status", timeout=5).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or sim.poll() is not None:
                    raise SystemExit("the simulator did not start") from None
                time.sleep(1)
        result = asyncio.run(measure(kalshi))
    finally:
        sim.terminate()
        sim.wait(60)
    budget = validate_settings({"venues": {"kalshi": kalshi}}).venues.kalshi.budget
    return {"universe": markets, "requests_per_second_each": budget, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=150_000)
    parser.add_argument(
        "--rps", type=float, default=None,
        help="each collector's Kalshi budget (default: the shipped one, 3/s without a key)",
    )  # fmt: skip
    args = parser.parse_args()
    write_result("scale_out", run(args.markets, args.rps))


if __name__ == "__main__":
    main()
