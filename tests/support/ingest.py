"""A venue's jobs over the simulator and a migrated test database (ingest and stream tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from exporter.categories import load_categories
from exporter.config import Settings
from exporter.ingest.common import Rejects
from exporter.ingest.kalshi import KalshiIngest
from exporter.ingest.polymarket import PolymarketIngest
from exporter.sim import Simulator
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.writer import Writer
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.polymarket.client import PolymarketClient
from tests.support.databases import Database

POLYMARKET_RETRY = {"attempts": 30, "wait_initial": "20ms", "wait_max": "200ms", "timeout": "30s"}
KALSHI_RETRY = {"attempts": 40, "wait_initial": "20ms", "wait_max": "200ms", "timeout": "30s"}


def polymarket_settings(db: Database, sim: Simulator, **polymarket: Any) -> Settings:
    """Settings pointing Polymarket at the simulator, fast retries, a hot set of 20."""
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["polymarket"] |= {"retry": POLYMARKET_RETRY, "hot_size": 20} | polymarket
    return db.settings(venues=venues)


def kalshi_venues(sim: Simulator, **kalshi: Any) -> dict[str, Any]:
    """The ``venues`` section for Kalshi alone, at the simulator, fast retries."""
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["polymarket"] = {"enabled": False}
    venues["kalshi"] |= {"retry": KALSHI_RETRY, "requests_per_second": 50} | kalshi
    return venues


@asynccontextmanager
async def polymarket_ingest(settings: Settings) -> AsyncIterator[PolymarketIngest]:
    """Polymarket's jobs over a migrated database."""
    async with migrated_writer(settings) as writer:
        client = PolymarketClient(settings.venues.polymarket)
        try:
            config = settings.venues.polymarket
            yield PolymarketIngest(config, client, writer, load_categories(), Rejects())
        finally:
            await client.aclose()


@asynccontextmanager
async def kalshi_ingest(settings: Settings) -> AsyncIterator[KalshiIngest]:
    """Kalshi's jobs over a migrated database."""
    async with migrated_writer(settings) as writer:
        client = KalshiClient(settings.venues.kalshi)
        try:
            yield KalshiIngest(settings.venues.kalshi, client, writer, load_categories(), Rejects())
        finally:
            await client.aclose()


@asynccontextmanager
async def migrated_writer(settings: Settings) -> AsyncIterator[Writer]:
    """A writer over an open pool of a migrated database."""
    report = prepare_schema(settings)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        yield Writer.from_settings(pool, report.mode, settings)
    finally:
        await pool.close()
