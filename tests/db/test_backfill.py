"""The history backfill against the simulator and real databases: what it stores is the
simulator's truth, it never touches a live row, re-running adds nothing, a restart resumes."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from exporter.config import Settings
from exporter.ingest.backfill import HELD_EXTRA, Backfill, Target, plan_of
from exporter.ingest.common import Rejects
from exporter.ingest.history_sources import KalshiHistory, PolymarketHistory
from exporter.ingest.polymarket import PolymarketIngest
from exporter.movers import MoversRefresher
from exporter.normalize.kalshi import parse_candle
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.kalshi import market_candles
from exporter.sim.polymarket import history_points
from exporter.sim.world import KalshiMarket
from exporter.storage.database import Database as Facade
from exporter.storage.history import HistoryStore
from exporter.storage.movers import naive_movers, read_movers
from exporter.venues.polymarket.client import PolymarketClient
from tests.support.databases import Database
from tests.support.ingest import (
    kalshi_ingest,
    kalshi_venues,
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
    enough: int = 0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once ``enough`` requests were answered."""

    def __post_init__(self) -> None:
        self.venue = self.inner.venue

    def requests(self, *args: Any) -> Any:
        return self.inner.requests(*args)

    def parse(self, *args: Any) -> Any:
        return self.inner.parse(*args)

    async def fetch(self, request: Any) -> Any:
        self.asked += 1
        answer = await self.inner.fetch(request)
        if self.enough and self.asked >= self.enough:
            self.reached.set()
        return answer


@asynccontextmanager
async def _polymarket(
    db: Database, sim: Simulator, movers: dict[str, Any] | None = None, **backfill: Any
) -> AsyncIterator[tuple[PolymarketIngest, Backfill, Counting, Settings]]:
    base = polymarket_settings(db, sim).model_dump()
    base["movers"] |= movers or {}
    settings = Settings.model_validate(base | {"backfill": backfill})
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


async def test_after_a_backfill_the_incremental_refresh_ranks_24h_like_the_naive_query(
    pg: Database,
) -> None:
    """Live rows only: no outcome has a price a day ago. A backfill (its rows noted in the
    database, as a separate command's would be) then gives the next refresh, incremental, the
    24 h ranking the naive computation finds over backfilled and live rows."""
    scenario = load_scenario({"seed": 8, "universe": {"polymarket": 30, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(120)
        every_move = {"filters": {"polymarket": {"min_volume_24h": 0, "max_spread": None}}}
        async with _polymarket(pg, sim, every_move) as (pm, backfill, _, settings):
            await pm.discover()
            await pm.refresh_tail()
            await pm.refresh_hot()
            refresher = MoversRefresher(
                Facade(pm.writer.pool), settings.movers, settings.storage.retention.snapshots
            )
            now = sim.clock.now()
            await refresher.refresh(now)
            async with pm.writer.pool.connection() as conn:
                assert await read_movers(conn, "24h", limit=10_000) == []
            plan = plan_of(pm.hot, settings.backfill, settings.venues.polymarket.stream.size)
            assert (await backfill.run(plan, now=now, live_only=True)).rows > 0
            # Each batch names the outcomes it wrote: the refresh reads those again, by key.
            noted = _rows(pg, "SELECT DISTINCT unnest(outcome_ids) FROM"
                              " movers_internal.history_written")  # fmt: skip
            filled = _rows(
                pg, "SELECT DISTINCT outcome_id FROM snapshots WHERE source = 'backfill'"
            )
            assert sorted(noted) == sorted(filled)
            later = now + timedelta(minutes=1)
            result = await refresher.refresh(later)
            assert not result.full
            async with pm.writer.pool.connection() as conn:
                stored = await read_movers(conn, "24h", limit=10_000)
                expected = [
                    m for m in await naive_movers(conn, settings.movers, later)
                    if m.window_label == "24h"
                ]  # fmt: skip
            assert expected
            assert stored == expected


async def test_kalshi_backfill_stores_candles_as_the_venue_serves_them(db: Database) -> None:
    scenario = load_scenario({"seed": 9, "universe": {"polymarket": 0, "kalshi": 60}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(300)
        base = db.settings(venues=kalshi_venues(sim, hot_size=10))
        settings = Settings.model_validate(base.model_dump() | {"backfill": {"hot_fidelity": "1h"}})
        async with kalshi_ingest(settings) as kx:
            await kx.discover()
            await kx.refresh_prices()
            source = KalshiHistory(kx.client, kx.rejects)
            store = HistoryStore(Facade(kx.writer.pool), kx.writer.mode)
            backfill = Backfill(source, store, settings.backfill,
                                retention=settings.storage.retention.snapshots,
                                heartbeat=settings.storage.heartbeat)  # fmt: skip
            plan = plan_of(kx.hot, settings.backfill, settings.venues.kalshi.stream.size)
            now = sim.clock.now()
            tally = await backfill.run(plan, now=now, live_only=True)
            assert tally.requests["failed"] == 0
            assert tally.rows > 0
            rows = _rows(db, "SELECT outcome_id, time, price, bid, ask FROM snapshots"
                             " WHERE source = 'backfill'")  # fmt: skip
            world = sim.world
            week = int((now - timedelta(days=8)).timestamp())
            checked = 0
            for ticker in {r[0].split(":", 1)[1] for r in rows}:
                market = world.by_key[ticker]
                assert isinstance(market, KalshiMarket)
                candles = market_candles(world, market, week, int(now.timestamp()), 60,
                                         sim.clock.elapsed())  # fmt: skip
                truth = {}
                for candle in candles:
                    parsed = parse_candle(candle, ticker)
                    if parsed is not None:
                        truth[parsed.time] = (parsed.price, parsed.bid, parsed.ask)
                for outcome, at, price, bid, ask in rows:
                    if outcome == f"kalshi:{ticker}" and at in truth:
                        assert truth[at] == (price, bid, ask)
                        checked += 1
            assert checked > 0.9 * len(rows)  # the rest: unchanged hours repeated (gaps)


async def test_a_killed_backfill_resumes_where_it_stopped(pg: Database) -> None:
    scenario = load_scenario({"seed": 10, "universe": {"polymarket": 80, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(120)
        async with _polymarket(pg, sim, hot_fidelity="1h", concurrency=1) as (
            pm, backfill, source, settings
        ):  # fmt: skip
            await pm.discover()
            await pm.refresh_tail()
            await pm.refresh_hot()  # every outcome has its live row: all of them are filled
            plan = plan_of(pm.hot, settings.backfill, settings.venues.polymarket.stream.size)
            now = sim.clock.now()
            planned = sum(len(t) for _, t in plan)
            source.enough = 3
            run = asyncio.create_task(backfill.run(plan, now=now, live_only=True))
            await source.reached.wait()
            await asyncio.sleep(0.05)  # the third answer is stored
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            done_before = _rows(pg, "SELECT count(*) FROM movers_internal.backfill_cursors")[0][0]
            assert 0 < done_before < planned
            # A new process: nothing in memory, the cursors in the database.
            async with _polymarket(pg, sim, hot_fidelity="1h", concurrency=1) as (
                _,
                again,
                more,
                _,
            ):
                tally = await again.run(plan, now=now, live_only=True)
            assert tally.covered["1h"] == done_before
            assert tally.queued["1h"] == planned - done_before
            # Asked again: at most the answers in hand when it was killed (the one being
            # asked, those waiting for the database).
            asked = source.asked + more.asked
            requests = PolymarketHistory(pm.client, pm.rejects).requests(
                [t for _, ts in plan for t in ts], 0, 1, timedelta(hours=1))  # fmt: skip
            assert asked <= len(requests) + 1 + HELD_EXTRA
            covered = _rows(pg, "SELECT count(*) FROM movers_internal.backfill_cursors")[0][0]
            assert covered == planned


async def test_bad_history_is_split_noted_filled_and_deduplicated(pg: Database) -> None:
    """At the network edge, a venue that refuses a window of more than three days (400), does
    not know one token, has an empty history for another, and sends the third's points twice
    and with a gap: the window is asked again in halves, the unknown token noted (and not asked
    again), the gap filled at the heartbeat, every point stored once."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    start = int((now - timedelta(days=7)).timestamp())
    good, unknown, empty = "111", "222", "333"
    asked: list[dict[str, Any]] = []
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if request.method == "GET":  # one token alone: the batch left it out
            if request.url.params["market"] == unknown:
                return httpx.Response(400, json={"error": "Invalid token id"})
            return httpx.Response(200, json={"history": []})
        body = orjson.loads(request.content)
        if body["end_ts"] - body["start_ts"] > 3 * 86_400:
            return httpx.Response(
                400, json={"error": "'start_ts' and 'end_ts' interval is too long"}
            )
        asked.append(body)
        points = [
            {"t": t, "p": 0.5 if t < start + 2 * 86_400 else 0.6}
            for t in range(-(-body["start_ts"] // 3600) * 3600, body["end_ts"] + 1, 3600)
            if not start + 86_400 <= t < start + 86_400 + 6 * 3600  # six hours missing
        ]
        return httpx.Response(200, json={"history": {good: points + points[:5], empty: []}})

    settings = pg.settings(
        venues={"polymarket": {"clob_url": "http://clob.test", "retry": {"attempts": 1}}}
    )
    config = settings.venues.polymarket
    client = PolymarketClient(config, transport=httpx.MockTransport(handler))
    rejects = Rejects()
    async with polymarket_ingest(settings) as pm:
        store = HistoryStore(Facade(pm.writer.pool), pm.writer.mode)
        backfill = Backfill(PolymarketHistory(client, rejects), store, settings.backfill,
                            retention=None, heartbeat=timedelta(hours=2))  # fmt: skip
        targets = [Target(f"polymarket:{t}", t) for t in (good, unknown, empty)]
        tally = await backfill.run([(timedelta(hours=1), targets)], now=now)
        await client.aclose()
    assert tally.requests["split"] >= 1
    # Answered: windows of at most three days covering the week without a gap.
    windows = sorted({(b["start_ts"], b["end_ts"]) for b in asked})
    assert windows[0][0] == start
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    rows = _rows(pg, "SELECT time, price FROM snapshots WHERE outcome_id = %s ORDER BY time",
                 f"polymarket:{good}")  # fmt: skip
    times = [t for t, _ in rows]
    assert len(times) == len(set(times))
    # Every hour of the week but the six missing ones, and the heartbeat's rows filling the
    # gap (every 2 h: three of them); the points two windows both hold, stored once.
    assert len(rows) == 7 * 24 - 6 + 3
    notes = dict(_rows(pg, "SELECT outcome_id, note FROM movers_internal.backfill_cursors"))
    assert notes[f"polymarket:{empty}"] == "empty"
    assert notes[f"polymarket:{unknown}"] == "unknown"
    assert tally.errors["unknown_outcome"] == 1
    # A second pass asks nothing: the unknown token is not asked again, the rest is covered.
    before = len(calls)
    async with polymarket_ingest(settings) as pm:
        client = PolymarketClient(config, transport=httpx.MockTransport(handler))
        store = HistoryStore(Facade(pm.writer.pool), pm.writer.mode)
        again = Backfill(PolymarketHistory(client, rejects), store, settings.backfill,
                         retention=None, heartbeat=timedelta(hours=2))  # fmt: skip
        await again.run([(timedelta(hours=1), targets)], now=now)
        await client.aclose()
    assert len(calls) == before


@dataclass
class Held:
    """A backfill started while ``snapshots`` takes no insert (the write turn held elsewhere)."""

    pm: PolymarketIngest
    backfill: Backfill
    source: Counting
    plan: list[tuple[timedelta, list[Target]]]
    run: asyncio.Task[Any]
    release: Callable[[], object]


@asynccontextmanager
async def _writes_held(pg: Database, enough: int, **backfill: Any) -> AsyncIterator[Held]:
    """60 Polymarket markets' hourly history asked while ``snapshots`` is locked against
    inserts, until ``enough`` requests were answered; ``release()`` lets the writes through."""
    scenario = load_scenario({"seed": 12, "universe": {"polymarket": 60, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(120)
        async with _polymarket(pg, sim, hot_fidelity="1h", **backfill) as (
            pm, backfill_, source, settings
        ):  # fmt: skip
            await pm.discover()
            await pm.refresh_tail()
            plan = plan_of(pm.hot, settings.backfill, settings.venues.polymarket.stream.size)
            source.enough = enough
            with pg.connect() as blocker:
                blocker.execute("BEGIN")
                blocker.execute("LOCK TABLE snapshots IN SHARE MODE")  # no insert passes
                run = asyncio.create_task(backfill_.run(plan, now=sim.clock.now(), live_only=True))
                await asyncio.wait_for(source.reached.wait(), 10)
                try:
                    yield Held(pm, backfill_, source, plan, run,
                               lambda: blocker.execute("COMMIT"))  # fmt: skip
                finally:
                    if not run.done():
                        run.cancel()


async def test_an_answer_waiting_for_the_database_does_not_hold_back_the_next_request(
    pg: Database,
) -> None:
    """The write turn is shared with live jobs and the other venue: while one answer waits
    for it, the next request still leaves on the budget (one request slot here)."""
    async with _writes_held(pg, enough=2, concurrency=1) as held:
        assert _rows(pg, "SELECT count(*) FROM movers_internal.backfill_cursors")[0][0] == 0
        held.release()
        tally = await asyncio.wait_for(held.run, 30)
        planned = PolymarketHistory(held.pm.client, held.pm.rejects).requests(
            [t for _, ts in held.plan for t in ts], 0, 1, timedelta(hours=1))  # fmt: skip
        assert len(planned) >= 3
        assert tally.requests["ok"] == held.source.asked
        assert tally.done["1h"] == sum(len(t) for _, t in held.plan)


async def test_answers_wait_for_the_database_only_up_to_the_points_held(pg: Database) -> None:
    """Large answers that come faster than the database writes them do not pile up in memory:
    once ``backfill.points_held`` is taken the next request waits (here each goes alone), and
    every answer is still written when the write turn comes."""
    async with _writes_held(pg, enough=1, points_held=1_000) as held:
        await asyncio.sleep(1)  # the budget would let several more leave meanwhile
        assert held.source.asked == 1
        held.release()
        tally = await asyncio.wait_for(held.run, 60)
        assert held.source.asked >= 3
        assert tally.requests["ok"] == held.source.asked
        assert tally.done["1h"] == sum(len(t) for _, t in held.plan)
        assert held.backfill.allowance.peak <= 20 * (7 * 24 + 2)  # one request's points at most
