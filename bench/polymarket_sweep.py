"""Polymarket: CPU cost of parsing one full Gamma sweep, and the wall time of a sweep.

Run by hand (not a test): ``.venv/bin/python -m bench.polymarket_sweep [--markets N]``.
Against the simulator's universe (default 30,000 markets): fetches every ``/events/keyset`` page
once, then times (process CPU, best of interleaved rounds, in three fresh processes: see
``bench.parse_cost``) a bare JSON decode of those bytes (orjson, and the standard library's
``json`` for reference) against decode + parse + normalise into our records.
Then times a full discovery-style sweep through the client with rate limits off. Writes
bench/results/polymarket_sweep.json. Target: parse <= 1.5x a bare orjson decode.
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
from exporter.ingest.polymarket import PolymarketIngest
from exporter.normalize.polymarket import (
    GammaEventsPage,
    decode_event,
    decode_market,
    event_context,
    parse_market,
)
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.venues.polymarket.client import PolymarketClient


async def fetch_pages(url: str) -> list[bytes]:
    pages, cursor = [], None
    async with httpx.AsyncClient(timeout=60) as client:
        while True:
            params: dict[str, Any] = {"limit": 500}
            if cursor:
                params["after_cursor"] = cursor
            response = await client.get(f"{url}/events/keyset", params=params)
            pages.append(response.content)
            cursor = orjson.loads(response.content).get("next_cursor")
            if not cursor:
                return pages


PAGE = msgspec.json.Decoder(GammaEventsPage)


def parse_all(pages: list[bytes], categories: Any) -> int:
    """What the discovery sweep does with each page's bytes: the page's envelope, then each
    event and each market decoded into its wire struct, then converted into our records."""
    received = datetime.now(UTC)
    count = 0
    for page in pages:
        for raw_event in PAGE.decode(page).events:
            event = decode_event(raw_event)
            context = event_context(event, categories.polymarket)
            for market in event.markets or []:
                try:
                    parse_market(decode_market(market), received, context)
                    count += 1
                except ParseError:
                    pass
    return count


class _NullWriter:
    """Stands in for the database so the sweep measures HTTP + parsing only."""

    async def upsert_markets(self, rows: Any) -> int:
        return len(rows)

    async def upsert_outcomes(self, rows: Any) -> int:
        return len(rows)

    async def write_snapshots(self, rows: Any) -> Any:
        return type("R", (), {"written": len(rows)})()

    async def open_market_ids(self, venue: Any) -> set[str]:
        return set()


async def run(markets: int) -> dict[str, Any]:
    scenario = load_scenario({"seed": 1, "universe": {"polymarket": markets, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock()) as sim:
        assert sim.urls is not None
        sim.advance(300)
        pages = await fetch_pages(sim.urls.gamma)
        categories = load_categories()
        parsed = parse_all(pages, categories)
        costs = measure("polymarket", pages)
        settings = validate_settings({"venues": sim.urls.venues()})
        client = PolymarketClient(settings.venues.polymarket)
        client.http.lift_limits()  # rate limits off: measure the sweep, not the budget
        ingest = PolymarketIngest(
            settings.venues.polymarket,
            client,
            _NullWriter(),  # type: ignore[arg-type]
            categories,
            Rejects(),
        )
        started = time.perf_counter()
        result = await ingest.discover()
        sweep = time.perf_counter() - started
        await client.aclose()
    size = sum(len(p) for p in pages)
    return {
        "markets_parsed": parsed,
        "pages": len(pages),
        "megabytes": round(size / 1e6, 1),
        **costs,
        "sweep_wall_seconds": round(sweep, 2),
        "sweep_markets": result["markets"],
        "note": "sweep: simulator and client share one process and its two cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markets", type=int, default=30_000)
    args = parser.parse_args()
    write_result("polymarket_sweep", {"universe": args.markets, **asyncio.run(run(args.markets))})


if __name__ == "__main__":
    main()
