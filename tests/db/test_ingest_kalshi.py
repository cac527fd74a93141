"""Kalshi jobs against the simulator and a real database (native PostgreSQL; the storage path is
the one the Polymarket sweep test runs on both servers)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.categories import load_categories
from exporter.ingest.common import Rejects
from exporter.ingest.kalshi import KalshiIngest
from exporter.model import Venue, displayed_price, owner
from exporter.sim import ManualClock, RealClock, Simulator, load_scenario
from exporter.sim.world import KalshiMarket
from exporter.venues.kalshi.client import KalshiClient
from tests.support.databases import Database
from tests.support.ingest import kalshi_ingest, kalshi_venues, migrated_writer
from tests.support.running import run_once

pytestmark = pytest.mark.db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _query(db: Database, sql: str) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _expected(sim: Simulator) -> dict[str, KalshiMarket]:
    """The simulator's open, non-combo markets."""
    return {
        m.key: m
        for m in sim.world.kalshi_markets
        if m.kalshi_status == "active" and not m.event.multivariate
    }


async def test_movers_run_once_with_only_kalshi_fills_the_tables(
    pg: Database, tmp_path: Path
) -> None:
    scenario = load_scenario({"seed": 31, "universe": {"polymarket": 0, "kalshi": 400}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(1800)
        config = tmp_path / "movers.yaml"
        config.write_text(yaml.safe_dump({"venues": kalshi_venues(sim, hot_size=400),
                                          "logging": {"format": "json"}}))  # fmt: skip
        code, err = await run_once(pg.url, config)
        assert code == 0, err
        expected = _expected(sim)
        stored = {r[0]: r[1:] for r in _query(
            pg, "SELECT native_id, status, category, title FROM markets")}  # fmt: skip
        assert {t for t, r in stored.items() if r[0] == "open"} == set(expected)
        assert not any(t.startswith("KXMVE") for t in stored)  # combos excluded
        mapping = load_categories()
        for ticker, market in expected.items():
            _status, category, title = stored[ticker]
            assert category == mapping.kalshi(market.event.series.category)
            assert title == f"{market.event.title} — {market.yes_sub_title}"
        latest = {r[0].split(":", 1)[1]: r[1:] for r in _query(
            pg, "SELECT DISTINCT ON (outcome_id) outcome_id, price, bid, ask FROM snapshots"
                " ORDER BY outcome_id, time DESC")}  # fmt: skip
        assert set(latest) == set(expected)
        for ticker, (price, bid, ask) in latest.items():
            truth = sim.truth.quotes[ticker]
            assert price == pytest.approx(displayed_price(truth.bid, truth.ask, truth.last))
            assert (bid, ask) == pytest.approx((truth.bid, truth.ask))
        trades = _query(pg, "SELECT count(*) FROM trades")[0][0]
        assert trades > 0


def _bucket_overdrawn(times: list[float], rate: float, capacity: float) -> bool:
    """Kalshi's own model (API_NOTES 2.7): a token bucket of ``capacity`` refilled at ``rate``;
    True if the requests at ``times`` ever found it empty."""
    tokens, last = capacity, times[0] if times else 0.0
    for moment in times:
        tokens = min(capacity, tokens + (moment - last) * rate)
        last = moment
        if tokens < 1 - 1e-6:
            return True
        tokens -= 1
    return False


async def test_a_429_window_slows_the_sweep_loses_nothing_and_keeps_to_the_budget(
    pg: Database,
) -> None:
    timeline = [{"at": "0s", "for": "1s", "rate_limit": {"venue": "kalshi"}}]
    scenario = load_scenario({"seed": 9, "universe": {"polymarket": 0, "kalshi": 2500},
                              "timeline": timeline})  # fmt: skip
    async with Simulator(scenario, clock=RealClock(START)) as sim:
        settings = pg.settings(venues=kalshi_venues(sim, requests_per_second=8, hot_size=1500))
        async with kalshi_ingest(settings) as ingest:
            await ingest.discover()
            await ingest.refresh_hot()
            stats = ingest.client.http.stats
            sweep = ingest.last_sweep_seconds
        assert sum(n for (_, status), n in stats.items() if status == "429") >= 1
        assert {family for family, _ in stats} >= {"series", "events", "markets"}
        stored = {r[0] for r in _query(pg, "SELECT native_id FROM markets WHERE status = 'open'")}
        assert stored == set(_expected(sim))
        times = [t for t, endpoint in sim.truth.arrivals if endpoint.startswith("kalshi")]
        assert len(times) > 25
        # Kalshi's bucket holds 2 s of budget (16); ours 1 s, plus one request of slack: times
        # are taken at arrival, where scheduling jitter can bunch two requests sent apart.
        assert not _bucket_overdrawn(times, rate=8, capacity=9)
        assert (len(times) - 8) / (times[-1] - times[0]) <= 8 * 1.05
        assert sweep is not None
        assert sweep > 0


async def test_trades_from_the_tape_resume_from_the_newest_stored(pg: Database) -> None:
    scenario = load_scenario({"seed": 2, "universe": {"polymarket": 0, "kalshi": 150}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        settings = pg.settings(venues=kalshi_venues(sim, hot_size=500))
        sim.advance(600)
        async with kalshi_ingest(settings) as ingest:
            await ingest.discover()
            first = await ingest.collect_trades()
        count = _query(pg, "SELECT count(*) FROM trades")[0][0]
        assert first["trades"] == count > 0
        sim.advance(600)
        async with kalshi_ingest(settings) as restarted:
            await restarted.discover()
            resumed = await restarted.collect_trades()
        ids = {r[0] for r in _query(pg, "SELECT trade_id FROM trades")}
        served = {t.trade_id for t in sim.world.trades if t.market.key in set(restarted.hot)}
        assert resumed["trades"] > 0
        newest_first_run = max(t.seconds for t in sim.world.trades if t.seconds <= 600)
        # Everything since the first run's newest trade arrived, once.
        assert {t.trade_id for t in sim.world.trades if t.seconds >= newest_first_run
                and t.market.key in set(restarted.hot)} <= ids  # fmt: skip
        assert ids <= served


async def test_three_shards_sweep_three_slices_of_the_listing_each_market_once(
    pg: Database,
) -> None:
    """With several shards the leader lists the venue once and stores it all; the other shards
    read it back from the database. Each collector's price sweep reads one slice of the listing
    by close time (the same boundaries on every shard); together the slices price every open
    market that no shard keeps hot exactly once."""
    scenario = load_scenario({"seed": 31, "universe": {"polymarket": 0, "kalshi": 400}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(600)
        settings = pg.settings(venues=kalshi_venues(sim, hot_size=5))
        shards: list[KalshiIngest] = []
        async with contextlib.AsyncExitStack() as stack:
            for index in range(3):
                writer = await stack.enter_async_context(migrated_writer(settings))
                client = KalshiClient(settings.venues.kalshi)
                stack.push_async_callback(client.aclose)
                shard = KalshiIngest(
                    settings.venues.kalshi, client, writer, load_categories(), Rejects(),
                    owner(Venue.KALSHI, index, 3), shard=(index, 3),
                )  # fmt: skip
                shards.append(shard)
            listings = sim.truth.responses[("kalshi /markets", 200)]
            await shards[0].discover()  # the leader's
            listings = sim.truth.responses[("kalshi /markets", 200)] - listings
            for shard in shards[1:]:
                await shard.refresh_listing()
            assert len({(s.listed, s.hot_anywhere) for s in shards}) == 1  # all agree
            slices = [s.sliced for s in shards]
            assert slices[0] is not None and slices[0][0] is None  # noqa: PT018
            assert slices[2] is not None and slices[2][1] is None  # noqa: PT018
            pages = sim.truth.responses[("kalshi /markets", 200)]
            for shard in shards:
                await shard.refresh_prices()
            swept = sim.truth.responses[("kalshi /markets", 200)] - pages
        rows = dict(_query(pg, "SELECT outcome_id, count(*) FROM snapshots GROUP BY 1"))
    hot = shards[0].hot_anywhere
    expected = {f"kalshi:{t}" for t in shards[0].listed - hot}
    assert set(rows) == expected
    assert set(rows.values()) == {1}
    assert len(hot) == 15  # five a shard
    assert all(len(s.hot) == 5 for s in shards)
    assert listings == 1  # the listing read once (400 markets: one page), not once a shard
    assert swept == 3  # one request a slice (400 markets, 1,000 a page)
