"""Polymarket jobs against the simulator and a real database.

The main sweep runs on both servers; the fault and trade scenarios run on native PostgreSQL only
(the WASM TimescaleDB is slow and the storage path is the one the sweep test already covers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.categories import load_categories
from exporter.ingest.common import Jobs, Rejects
from exporter.ingest.polymarket import PolymarketIngest
from exporter.model import Venue, displayed_price, owner, shard_of
from exporter.sim import ManualClock, RealClock, Simulator, load_scenario
from exporter.venues.polymarket.client import PolymarketClient
from tests.support.databases import Database
from tests.support.ingest import (
    POLYMARKET_RETRY,
    migrated_writer,
    polymarket_ingest,
    polymarket_settings,
)
from tests.support.running import run_once

pytestmark = pytest.mark.db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _query(db: Database, sql: str) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def _latest_prices(db: Database) -> dict[str, tuple[float, float | None, float | None]]:
    rows = _query(
        db,
        "SELECT DISTINCT ON (outcome_id) outcome_id, price, bid, ask FROM snapshots"
        " ORDER BY outcome_id, time DESC",
    )
    return {r[0].split(":", 1)[1]: (r[1], r[2], r[3]) for r in rows}


async def test_one_discovery_and_price_sweep_store_exactly_the_open_markets(db: Database) -> None:
    scenario = load_scenario({"seed": 21, "universe": {"polymarket": 60, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(120)
        async with polymarket_ingest(polymarket_settings(db, sim)) as ingest:
            discovered = await ingest.discover()
            hot = await ingest.refresh_hot()
        open_markets = sim.world.open_markets("polymarket")
        stored = _query(db, "SELECT native_id, status, category FROM markets")
        assert {r[0] for r in stored if r[1] == "open"} == {m.key for m in open_markets}
        # Open events also carry their settled markets (neg-risk siblings): stored as resolved.
        settled = {r[0] for r in stored if r[1] != "open"}
        assert all(sim.world.by_key[k].status == "resolved" for k in settled)
        assert {r[1] for r in stored if r[0] in settled} <= {"resolved"}
        assert discovered["hot"] == 20
        assert hot["tokens"] == 40
        outcomes = _query(db, "SELECT native_id, position FROM outcomes")
        assert len(outcomes) == 2 * len(stored)
        # Categories from the tags; events with only unmapped tags fall back to Other.
        expected = {m.key: m.event.category for m in sim.world.poly_markets}
        unmapped = {m.key for m in sim.world.poly_markets if all(
            t[2] in ("sweeden", "health-and-human-services", "mentions") for t in m.event.tags)}  # type: ignore[attr-defined]  # fmt: skip
        for native_id, _, category in stored:
            assert category == ("Other" if native_id in unmapped else expected[native_id])
        # Every outcome's latest price is the displayed-price rule applied to what was served:
        # books for the hot set, Gamma's fields for the rest.
        latest = _latest_prices(db)
        assert set(latest) == {t for m in open_markets for t in m.tokens}  # type: ignore[attr-defined]
        served_books = 0
        for token, (price, bid, ask) in latest.items():
            truth = sim.truth.quotes[token]
            assert price == pytest.approx(displayed_price(truth.bid, truth.ask, truth.last)), token
            assert (bid, ask) == pytest.approx((truth.bid, truth.ask))
            served_books += truth.endpoint == "clob /books"
        assert served_books == 40


async def test_a_429_window_and_a_5xx_burst_delay_the_sweep_but_lose_nothing(pg: Database) -> None:
    timeline = [
        {"at": "0s", "for": "1s", "rate_limit": {"venue": "polymarket", "endpoint": "gamma *"}},
        {
            "at": "0s",
            "for": "5s",
            "server_error": {"venue": "polymarket", "endpoint": "clob /books"},
        },
        {"at": "0s", "truncate": {"venue": "polymarket", "endpoint": "gamma /events/keyset"}},
    ]
    scenario = load_scenario({"seed": 3, "universe": {"polymarket": 40, "kalshi": 0},
                              "timeline": timeline})  # fmt: skip
    async with Simulator(scenario, clock=RealClock(START)) as sim:
        async with polymarket_ingest(polymarket_settings(pg, sim, hot_size=40)) as ingest:
            await ingest.discover()
            await ingest.refresh_hot()
            stats = ingest.client.http.stats
        assert stats[("gamma_events", "429")] >= 1
        assert stats[("clob_books", "5xx")] >= 1
        assert ingest.client.http.events[("gamma_events", "retry")] >= 2
        stored = {r[0] for r in _query(pg, "SELECT native_id FROM markets WHERE status = 'open'")}
        assert stored == {m.key for m in sim.world.open_markets("polymarket")}
        booked = [t for t, q in sim.truth.quotes.items() if q.endpoint == "clob /books"]
        assert len(booked) == 2 * len(stored)
        actions = {i.action for i in sim.truth.injected}
        assert {"rate_limit", "server_error", "truncate"} <= actions


async def test_a_malformed_market_on_page_2_costs_only_that_market(pg: Database) -> None:
    timeline = [{"malformed": {"venue": "polymarket", "endpoint": "gamma /events/keyset",
                               "page": 2}}]  # fmt: skip
    scenario = load_scenario({"seed": 8, "universe": {"polymarket": 1500, "kalshi": 0},
                              "timeline": timeline})  # fmt: skip
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        async with polymarket_ingest(polymarket_settings(pg, sim)) as ingest:
            await ingest.discover()
            rejects = ingest.rejects.counts
        ((_endpoint, broken),) = sim.truth.malformed
        stored = {r[0] for r in _query(pg, "SELECT native_id FROM markets WHERE status = 'open'")}
        assert stored == {m.key for m in sim.world.open_markets("polymarket")} - {broken}
        assert rejects == {("polymarket", "market"): 1}


async def test_trades_are_collected_once_and_resume_after_a_restart(pg: Database) -> None:
    scenario = load_scenario({"seed": 4, "universe": {"polymarket": 80, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        settings = polymarket_settings(
            pg, sim, hot_size=100
        )  # every market: the hot set stays the same
        sim.advance(1800)
        async with polymarket_ingest(settings) as ingest:
            await ingest.discover()
            first = await ingest.collect_trades()
            again = await ingest.collect_trades()
            hot = list(ingest.hot)
        assert first["trades"] > 0
        assert again["trades"] == 0

        def served() -> set[tuple[str, datetime]]:
            return {
                (t.market.tokens[t.token], sim.world.time_of(t.seconds).replace(microsecond=0))  # type: ignore[attr-defined]
                for c in set(hot) for t in sim.world.by_key[c].trades
            }  # fmt: skip

        def stored() -> set[tuple[str, datetime]]:
            rows = _query(pg, "SELECT outcome_id, time FROM trades")
            return {(o.split(":", 1)[1], t) for o, t in rows}

        assert stored() == served()
        count = len(_query(pg, "SELECT 1 FROM trades"))
        sim.advance(1800)
        async with polymarket_ingest(
            settings
        ) as restarted:  # a new process: marks come from the database
            await restarted.discover()
            resumed = await restarted.collect_trades()
            assert sorted(restarted.hot) == sorted(hot)
        assert resumed["trades"] == len(_query(pg, "SELECT 1 FROM trades")) - count > 0
        assert stored() == served()


async def test_closed_and_new_markets_show_on_the_next_discovery(pg: Database) -> None:
    timeline = [
        {"at": "10s", "close": {"venue": "polymarket", "market": 5}},
        {"at": "12s", "add_markets": {"venue": "polymarket", "count": 3}},
    ]
    scenario = load_scenario({"seed": 6, "universe": {"polymarket": 30, "kalshi": 0},
                              "timeline": timeline})  # fmt: skip
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        target = sim.world.market("polymarket", 5)
        settings = polymarket_settings(pg, sim)
        async with polymarket_ingest(settings) as ingest:
            await ingest.discover()
            before = _query(pg, f"SELECT status FROM markets WHERE native_id = '{target.key}'")
            sim.advance(20)
            result = await ingest.discover()
        after = _query(pg, f"SELECT status FROM markets WHERE native_id = '{target.key}'")
        assert before == [("open",)]
        assert after == [("closed",)]  # looked up with closed=true: closed, not just gone
        assert result["gone"] == 1
        new = {m.key for m in sim.world.poly_markets[-3:]}
        stored = {r[0] for r in _query(pg, "SELECT native_id FROM markets WHERE status = 'open'")}
        assert new <= stored


async def test_movers_run_once_fills_every_table(pg: Database, tmp_path: Path) -> None:
    scenario = load_scenario({"seed": 12, "universe": {"polymarket": 40, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(3600)
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["polymarket"] |= {"hot_size": 10, "retry": POLYMARKET_RETRY}
        venues["kalshi"] = {"enabled": False}
        config = tmp_path / "movers.yaml"
        config.write_text(yaml.safe_dump({"venues": venues, "logging": {"format": "json"}}))
        code, err = await run_once(pg.url, config)
    assert code == 0, err
    counts = {
        table: _query(pg, f"SELECT count(*) FROM {table}")[0][0]
        for table in ("markets", "outcomes", "snapshots", "trades")
    }
    open_count = _query(pg, "SELECT count(*) FROM markets WHERE status = 'open'")[0][0]
    assert open_count == len(sim.world.open_markets("polymarket"))
    assert counts["outcomes"] == 2 * counts["markets"]
    assert counts["snapshots"] >= counts["outcomes"]
    assert counts["trades"] > 0
    done = [json.loads(line) for line in err.splitlines() if "one pass done" in line]
    assert done[0]["jobs"]["movers_refresh"] == {"ok": 1}


def test_jobs_count_failures_and_recover() -> None:
    jobs = Jobs()
    calls = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            from exporter.errors import VenueUnavailable

            raise VenueUnavailable("polymarket", "/books", "HTTP 503")

    assert asyncio.run(jobs.run("hot", flaky)) is False
    assert asyncio.run(jobs.run("hot", flaky)) is True
    state = jobs.states["hot"]
    assert dict(state.runs) == {"failed": 1, "ok": 1}
    assert not state.failing


async def test_three_shards_list_once_and_sweep_three_slices_of_the_events(pg: Database) -> None:
    """With several shards the leader lists Gamma once and stores every market; the other shards
    read the listing back. Each tail sweep reads one slice of the open events by end date (the
    same boundaries on every shard); together the slices price every open market that no shard
    keeps hot exactly once, and the leader's discovery prices the markets of an event without an
    end date (no slice's filter matches it)."""
    scenario = load_scenario({"seed": 23, "universe": {"polymarket": 150, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        sim.advance(600)
        undated = next(e for e in sim.world.poly_events if not e.closed and len(e.markets) > 1)
        undated.dated = False
        settings = polymarket_settings(pg, sim, hot_size=4, stream={"enabled": False})
        shards: list[PolymarketIngest] = []
        events = ("gamma /events/keyset", 200)
        async with contextlib.AsyncExitStack() as stack:
            for index in range(3):
                writer = await stack.enter_async_context(migrated_writer(settings))
                client = PolymarketClient(settings.venues.polymarket)
                stack.push_async_callback(client.aclose)
                shards.append(PolymarketIngest(
                    settings.venues.polymarket, client, writer, load_categories(), Rejects(),
                    owner(Venue.POLYMARKET, index, 3), shard=(index, 3),
                ))  # fmt: skip
            before = sim.truth.responses[events]
            await shards[0].discover()  # the leader's
            listed_pages = sim.truth.responses[events] - before
            after_discovery = dict(
                _query(pg, "SELECT outcome_id, count(*) FROM snapshots GROUP BY 1")
            )
            for shard in shards:
                await shard.refresh_listing()
            assert len({(s.listed, s.hot_anywhere, s.sliced is None) for s in shards}) == 1
            slices = [s.sliced for s in shards]
            assert all(s is not None for s in slices)
            assert slices[0][0] is None and slices[2][1] is None  # type: ignore[index]  # noqa: PT018
            before = sim.truth.responses[events]
            for shard in shards:
                await shard.refresh_tail()
            swept_pages = sim.truth.responses[events] - before
            tokens = dict(_query(pg, "SELECT m.native_id, array_agg(o.outcome_id) FROM outcomes o"
                                 " JOIN markets m USING (market_id) WHERE m.status = 'open'"
                                 " GROUP BY 1"))  # fmt: skip
            # Each open market in exactly one slice (change-only storage would hide a second
            # reading of the same price), the undated event's in none.
            read: Counter[str] = Counter()
            for shard in shards:
                sweep = shard._sweep(every=True, ending=shard.sliced)  # noqa: SLF001
                async for parsed, _ in sweep:
                    read.update(p.market.native_id for p in parsed if p.market.native_id in tokens)
        rows = dict(_query(pg, "SELECT outcome_id, count(*) FROM snapshots GROUP BY 1"))
    hot = shards[0].hot_anywhere
    assert len(hot) == 12  # four a shard
    assert all(len(s.hot) == 4 and set(s.hot) <= hot for s in shards)
    # The whole open listing, each shard's hot set among its own markets.
    assert shards[0].listed == set(tokens) == {m.key for m in sim.world.open_markets("polymarket")}
    for index, shard in enumerate(shards):
        assert {shard_of(Venue.POLYMARKET, c, 3) for c in shard.hot} == {index}
    expected = {o for c, outcomes in tokens.items() if c not in hot for o in outcomes}
    assert set(rows) == expected
    assert set(rows.values()) == {1}  # once: no slice overlaps another or the discovery
    # The undated event's markets were priced by the discovery, not by a slice.
    undated_outcomes = {
        o for m in undated.markets if m.key in tokens and m.key not in hot for o in tokens[m.key]
    }
    assert undated_outcomes
    assert set(after_discovery) == undated_outcomes
    undated_markets = {m.key for m in undated.markets}
    assert set(read) == set(tokens) - undated_markets
    assert set(read.values()) == {1}
    assert listed_pages >= 1
    assert swept_pages == 3  # one page a slice: the events were read once in all
