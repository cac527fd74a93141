"""The history backfill against the simulator and real databases: what it stores is the
simulator's truth, it never touches a live row, re-running adds nothing, a restart resumes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exporter.config import Settings
from exporter.ingest.backfill import Backfill, plan_of
from exporter.ingest.history_sources import PolymarketHistory
from exporter.ingest.polymarket import PolymarketIngest
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.polymarket import history_points
from exporter.storage.database import Database as Facade
from exporter.storage.history import HistoryStore
from tests.support.databases import Database
from tests.support.ingest import (
    polymarket_ingest,
    polymarket_settings,
)

pytestmark = pytest.mark.db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rows(db: Database, sql: str, *params: Any) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(sql, params).fetchall()


@dataclass
class Counting:
    """A history source that counts what it was asked."""

    inner: Any
    asked: int = 0
    venue: Any = None

    def __post_init__(self) -> None:
        self.venue = self.inner.venue

    def requests(self, *args: Any) -> Any:
        return self.inner.requests(*args)

    async def fetch(self, request: Any) -> Any:
        self.asked += 1
        return await self.inner.fetch(request)


@asynccontextmanager
async def _polymarket(
    db: Database, sim: Simulator, **backfill: Any
) -> AsyncIterator[tuple[PolymarketIngest, Backfill, Counting, Settings]]:
    base = polymarket_settings(db, sim)
    settings = Settings.model_validate(base.model_dump() | {"backfill": backfill})
    async with polymarket_ingest(settings) as pm:
        source = Counting(PolymarketHistory(pm.client, pm.rejects))
        store = HistoryStore(Facade(pm.writer.pool), pm.writer.mode)
        backfill_ = Backfill(source, store, settings.backfill,
                             retention=settings.storage.retention.snapshots,
                             heartbeat=settings.storage.heartbeat)  # fmt: skip
        yield pm, backfill_, source, settings


async def test_polymarket_backfill_stores_the_venues_history_before_the_live_rows(
    db: Database,
) -> None:
    scenario = load_scenario({"seed": 7, "universe": {"polymarket": 40, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(300)
        async with _polymarket(db, sim, hot_fidelity="1h") as (pm, backfill, source, settings):
            await pm.discover()
            await pm.refresh_tail()
            await pm.refresh_hot()
            plan = plan_of(pm.hot, settings.backfill, settings.venues.polymarket.stream.size)
            now = sim.clock.now()
            tally = await backfill.run(plan, now=now, live_only=True)
            assert tally.rows > 0
            assert tally.requests["failed"] == 0
            first_asked = source.asked
            # Every point is the simulator's own, and none lies at or after a live row.
            stored = _rows(db, "SELECT outcome_id, time, price, source FROM snapshots"
                               " ORDER BY outcome_id, time")  # fmt: skip
            first_live: dict[str, datetime] = {}
            for outcome, at, _, origin in stored:
                if origin == "live":
                    first_live.setdefault(outcome, at)
            backfilled = [(o, t, p) for o, t, p, origin in stored if origin == "backfill"]
            assert backfilled
            assert all(t < first_live[o] for o, t, _ in backfilled)
            assert min(t for _, t, _ in backfilled) >= now - timedelta(days=7)
            world = sim.world
            for outcome in {o for o, _, _ in backfilled}:
                market, token = world.by_token[outcome.split(":", 1)[1]]
                week_ago = int((now - timedelta(days=8)).timestamp())
                points = history_points(world, market, token, week_ago, int(now.timestamp()), 60,
                                        sim.clock.elapsed())  # fmt: skip
                truth = {p["t"]: p["p"] for p in points}
                mine = [(t, p) for o, t, p in backfilled if o == outcome]
                assert all(truth[int(t.timestamp())] == p for t, p in mine), outcome
            # Again: nothing is asked (the cursors say it is done) and nothing is added.
            count = len(stored)
            await backfill.run(plan, now=now, live_only=True)
            assert source.asked == first_asked
            # Without the cursors (a fresh process): asked again, every point a duplicate.
            await backfill.store.forget()
            backfill.filled.clear()
            again = await backfill.run(plan, now=now, live_only=True)
            assert source.asked == 2 * first_asked
            assert _rows(db, "SELECT count(*) FROM snapshots")[0][0] == count
            assert again.duplicates > 0
