"""Kalshi: CPU cost of parsing one full ``/markets`` sweep, and the wall time of a sweep.

Run by hand (not a test): ``.venv/bin/python -m bench.kalshi_sweep [--markets N]``.
Against the simulator's universe (default 150,000 markets): fetches every
``/markets?status=open&mve_filter=exclude&limit=1000`` page once, then times (process CPU, best of
interleaved rounds, in three fresh processes: see ``bench.parse_cost``) a bare JSON decode of
those bytes (orjson; the standard library's ``json`` for reference) against decode + parse +
normalise into our records. Then times the prices job's sweep through the client with the budget
lifted. Writes bench/results/kalshi_sweep.json. Target: <= 1.5x a bare orjson decode.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import orjson

from bench.common import write_result
from bench.parse_cost import measure
from exporter.categories import load_categories
from exporter.config import validate_settings
from exporter.errors import ParseError
from exporter.ingest.common import Rejects
from exporter.ingest.hot import Known
from exporter.ingest.kalshi import KalshiIngest
from exporter.normalize.kalshi import KalshiMarketsPage, decode_market, parse_market
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.venues.kalshi.client import KalshiClient


async def fetch_pages(url: str) -> list[bytes]:
    pages, cursor = [], ""
    async with httpx.AsyncClient(timeout=60) as client:
        while True:
            params: dict[str, str | int] = {
                "limit": 1000,
                "status": "open",
                "mve_filter": "exclude",
                "cursor": cursor,
            }
            response = await client.get(f"{url}/markets", params=params)
            pages.append(response.content)
            cursor = orjson.loads(response.content)["cursor"]
            if not cursor:
                return pages


PAGE = msgspec.json.Decoder(KalshiMarketsPage)


def parse_all(pages: list[bytes]) -> int:
    """What the sweep does with each page's bytes: the envelope, then each market decoded into
    its wire struct (exact decimals) and converted into our records."""
    received = datetime.now(UTC)
    count = 0
    for page in pages:
        for market in PAGE.decode(page).markets or []:
            try:
                parse_market(decode_market(market), received, None, "Other")
                count += 1
            except ParseError:
                pass
    return count


class _NullWriter:
    async def write_snapshots(self, rows: Any) -> Any:
        return type("R", (), {"written": len(rows)})()


async def run(markets: int) -> dict[str, Any]:
    scenario = load_scenario({"seed": 1, "universe": {"polymarket": 0, "kalshi": markets}})
    async with Simulator(scenario, clock=ManualClock()) as sim:
        assert sim.urls is not None
        sim.advance(300)
        pages = await fetch_pages(sim.urls.kalshi_rest)
        parsed = parse_all(pages)
        costs = measure("kalshi", pages)
        settings = validate_settings(
            {"venues": {"kalshi": sim.urls.venues()["kalshi"] | {"requests_per_second": 1000}}}
        )
        client = KalshiClient(settings.venues.kalshi)
        ingest = KalshiIngest(
            settings.venues.kalshi,
            client,
            _NullWriter(),  # type: ignore[arg-type]
            load_categories(),
            Rejects(),
        )
        ingest.hot.choose({m.key: Known((m.key,), 0.0) for m in sim.world.kalshi_markets}, [])
        started = time.perf_counter()
        await ingest.refresh_prices()
        sweep = time.perf_counter() - started
        await client.aclose()
    size = sum(len(p) for p in pages)
    return {
        "markets_parsed": parsed,
        "pages": len(pages),
        "megabytes": round(size / 1e6, 1),
        **costs,
        "sweep_wall_seconds": round(sweep, 2),
        "note": "budget lifted to 1000 requests/s; simulator and client share one process",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=150_000)
    args = parser.parse_args()
    write_result("kalshi_sweep", {"universe": args.markets, **asyncio.run(run(args.markets))})


if __name__ == "__main__":
    main()
