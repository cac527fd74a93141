"""Signals from the simulator through the venues' jobs and a real database to Alertmanager's API
(a stand-in at the network edge): whale trades, a watched wallet, a listing, a market closing.
Each is posted once, with the market's title, numbers and link; a first start's sweep of every
market lists nothing; cooldown and budget hold back what they should and count it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from exporter.config import Settings
from exporter.ingest.hot import in_hot_sets, whale_limits
from exporter.ingest.kalshi import KalshiIngest
from exporter.ingest.polymarket import PolymarketIngest
from exporter.signals import Signals
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.world import KalshiMarket, PolyMarket
from exporter.storage.database import Database as Facade
from exporter.storage.signals import SignalStore
from tests.support.databases import Database
from tests.support.ingest import kalshi_ingest, polymarket_ingest

pytestmark = pytest.mark.db
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
WATCHED = "0x5a1e000000000000000000000000000000c0ffee"
AM = "http://alertmanager.test:9093"


class Alertmanager:
    """What was posted to ``/api/v2/alerts``."""

    def __init__(self) -> None:
        self.posts: list[list[dict[str, Any]]] = []
        self.status = 200

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v2/alerts"
        self.posts.append(orjson.loads(request.content))
        return httpx.Response(self.status, json={})

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [a for post in self.posts for a in post]

    def named(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.alerts if a["labels"]["alertname"] == name]


def _scenario() -> Any:
    timeline = [
        {"at": 120, "trade": {"venue": "polymarket", "market": 1, "size": 50_000}},
        {"at": 121, "trade": {"venue": "polymarket", "market": 4, "size": 12, "wallet": WATCHED}},
        {"at": 122, "trade": {"venue": "kalshi", "market": 2, "size": 90_000}},
        {"at": 125, "add_markets": {"venue": "polymarket", "count": 1}},
        {"at": 126, "close": {"venue": "kalshi", "market": 5}},
        # A second whale in the first one's market: held by the cooldown.
        {"at": 130, "trade": {"venue": "polymarket", "market": 1, "size": 60_000}},
    ]  # fmt: skip
    return load_scenario(
        {"seed": 7, "universe": {"polymarket": 30, "kalshi": 30}, "timeline": timeline}
    )


@asynccontextmanager
async def _venues(
    db: Database, sim: Simulator, signals: dict[str, Any]
) -> AsyncIterator[tuple[PolymarketIngest, KalshiIngest, Signals, Alertmanager]]:
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["kalshi"] |= {"requests_per_second": 50}
    settings = Settings.model_validate(
        db.settings(venues=venues).model_dump()
        | {"signals": {"alertmanager_url": AM, "wallets": {WATCHED: "Demo whale"}} | signals}
    )
    am = Alertmanager()
    async with polymarket_ingest(settings) as pm, kalshi_ingest(settings) as kx:
        client = httpx.AsyncClient(transport=httpx.MockTransport(am.handler))
        found = Signals(
            settings.signals, SignalStore(Facade(pm.writer.pool)), client, clock=sim.clock.now
        )
        pm.writer.trade_listeners.append(found.trades)
        kx.writer.trade_listeners.append(found.trades)
        try:
            yield pm, kx, found, am
        finally:
            await client.aclose()


async def _sweep(pm: PolymarketIngest, kx: KalshiIngest, signals: Signals) -> None:
    await pm.discover()
    await kx.discover()
    await pm.collect_trades()
    await kx.collect_trades()
    await signals.market_events()
    await signals.flush()


async def test_signals_reach_alertmanager_once_each_naming_market_numbers_and_link(
    db: Database,
) -> None:
    async with (
        Simulator(_scenario(), clock=ManualClock(START)) as sim,
        _venues(db, sim, {}) as (pm, kx, signals, am),
    ):
        sim.advance(60)
        await _sweep(pm, kx, signals)
        # A first start stores every market there is: none of them is a listing.
        assert am.alerts == [], am.alerts
        assert signals.detected == {}

        sim.advance(140)
        await _sweep(pm, kx, signals)
        world = sim.world
        whale = world.market("polymarket", 1)
        assert isinstance(whale, PolyMarket)
        (alert,) = [a for a in am.named("WhaleTrade") if a["labels"]["venue"] == "polymarket"]
        labels, notes = alert["labels"], alert["annotations"]
        assert labels["market_id"] == f"polymarket:{whale.key}"
        assert labels["title"] == whale.title
        assert labels["area"] == "signals"
        price = whale.last_m / 1000
        assert float(notes["notional"]) == pytest.approx(50_000 * price)
        assert f"${50_000 * price:,.0f}" in notes["summary"]
        assert notes["description"].endswith(labels["url"])
        assert labels["url"].startswith("https://polymarket.com/event/")

        (wallet,) = am.named("WalletTrade")
        assert wallet["labels"]["wallet"] == WATCHED
        assert wallet["annotations"]["summary"].startswith("Demo whale BUY")

        kalshi = world.market("kalshi", 2)
        assert isinstance(kalshi, KalshiMarket)
        (kwhale,) = [a for a in am.named("WhaleTrade") if a["labels"]["venue"] == "kalshi"]
        assert kwhale["labels"]["market_id"] == f"kalshi:{kalshi.key}"
        assert float(kwhale["annotations"]["size"]) == 90_000

        (listed,) = am.named("MarketListed")
        added = world.poly_markets[-1]
        assert listed["labels"]["market_id"] == f"polymarket:{added.key}"
        assert added.title[:60] in listed["annotations"]["summary"]

        closed = world.market("kalshi", 5)
        (gone,) = am.named("MarketClosed")
        assert gone["labels"]["market_id"] == f"kalshi:{closed.key}"
        assert gone["annotations"]["final_price"]
        assert "open → closed" in gone["annotations"]["description"]

        # The second whale in the same market waited out the cooldown; every count says so.
        results = dict(signals.results)
        assert results[("whale", "polymarket", "cooldown")] == 1
        assert results[("whale", "polymarket", "sent")] == 1
        assert signals.detected[("whale", "polymarket")] == 2

        # Seen again (the next poll, or the stream), a trade is not posted again.
        posted = len(am.alerts)
        await _sweep(pm, kx, signals)
        assert len(am.alerts) == posted


async def test_over_the_minutes_budget_and_with_alertmanager_down_signals_are_counted(
    db: Database,
) -> None:
    async with (
        Simulator(_scenario(), clock=ManualClock(START)) as sim,
        _venues(db, sim, {"max_per_minute": 2, "cooldown": "1s"}) as (pm, kx, signals, am),
    ):
        sim.advance(60)
        await _sweep(pm, kx, signals)
        am.status = 503
        sim.advance(140)
        await _sweep(pm, kx, signals)
        results = dict(signals.results)
        assert sum(v for (_, _, r), v in results.items() if r == "failed") == 2
        assert sum(v for (_, _, r), v in results.items() if r == "over_budget") >= 3
        assert len(am.posts) > 1  # retried


def _books_and_volume() -> Any:
    timeline = [
        # Five trades of ~$2.6k each on market 1 within a minute: no whale, a volume spike.
        *({"at": 400 + i, "trade": {"venue": "polymarket", "market": 1, "size": 3_000}}
          for i in range(5)),
        # Market 7's book thins out for ten minutes.
        {"at": 300, "for": 600, "gap": {"venue": "polymarket", "market": 7, "spread": 0.3}},
    ]  # fmt: skip
    return load_scenario(
        {"seed": 7, "universe": {"polymarket": 30, "kalshi": 0}, "timeline": timeline}
    )


async def test_a_liquidity_gap_held_and_a_volume_spike_notify_once(db: Database) -> None:
    volume = {"window": "5m", "baseline": "1h", "min_history": "5m",
              "floor": {"polymarket": 5_000, "kalshi": None}}  # fmt: skip
    async with (
        Simulator(_books_and_volume(), clock=ManualClock(START)) as sim,
        _venues(db, sim, {"volume": volume, "liquidity": {"learn": "3m"}}) as (
            pm,
            _kx,
            signals,
            am,
        ),
    ):
        pm.writer.snapshot_listeners.append(signals.snapshots)
        signals.watched = in_hot_sets({"polymarket": pm.hot})
        sim.advance(60)
        await pm.discover()
        spikes_seen = []
        for _ in range(40):  # 60 s .. 660 s, a hot poll every 15 s
            sim.advance(15)
            await pm.refresh_hot()
            await pm.collect_trades()
            await signals.market_events()
            spikes_seen.append((await signals.volume_spikes())["spikes"])
            await signals.flush()
        world = sim.world
        gapped = world.market("polymarket", 7)
        (gap,) = am.named("LiquidityGap")
        assert gap["labels"]["market_id"] == f"polymarket:{gapped.key}"
        assert "Liquidity gap: spread 30.0¢" in gap["annotations"]["summary"]
        assert float(gap["annotations"]["typical"]) <= 0.03
        assert gap["annotations"]["description"].endswith(gap["labels"]["url"])
        # Held two minutes before it notified (the gap began at 300 s).
        assert int(gap["annotations"]["description"].split("held ")[1].split(" s")[0]) >= 120

        spiked = world.market("polymarket", 1)
        (spike,) = am.named("VolumeSpike")
        assert spike["labels"]["market_id"] == f"polymarket:{spiked.key}"
        assert float(spike["annotations"]["volume"]) >= 5 * 3_000 * 0.8
        assert "in 5m" in spike["annotations"]["summary"]
        # Detected at each run while the trades are in the window; notified once (cooldown).
        assert signals.detected[("volume", "polymarket")] == sum(spikes_seen) >= 2
        assert signals.results[("volume", "polymarket", "cooldown")] >= 1
        assert not am.named("WhaleTrade")


async def test_discovery_finds_the_watched_markets_by_slug_and_event_ticker(db: Database) -> None:
    scenario = load_scenario({"seed": 7, "universe": {"polymarket": 30, "kalshi": 30}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        world = sim.world
        poly = world.market("polymarket", 20)
        kalshi = world.market("kalshi", 3)
        assert isinstance(poly, PolyMarket)
        assert isinstance(kalshi, KalshiMarket)
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["polymarket"] |= {"hot_size": 2, "watchlist": [
            {"market": poly.slug, "move_pp": {"5m": 2}, "whale": 300}]}  # fmt: skip
        venues["kalshi"] |= {"hot_size": 2, "requests_per_second": 50, "watchlist": [
            {"market": kalshi.event.ticker, "move_pp": {"1h": 4}}]}  # fmt: skip
        settings = db.settings(venues=venues)
        sim.advance(60)
        async with polymarket_ingest(settings) as pm, kalshi_ingest(settings) as kx:
            await pm.discover()
            await kx.discover()
            assert set(pm.hot.watches) == {poly.key}
            assert poly.key in pm.hot  # hot however little it trades
            event = {m.key for m in world.kalshi_markets
                     if m.event is kalshi.event and m.status == "open"}  # fmt: skip
            assert set(kx.hot.watches) == event
            assert event <= set(kx.hot)
            whale_for = whale_limits({"polymarket": pm.hot, "kalshi": kx.hot})
            assert whale_for(f"polymarket:{poly.tokens[1]}") == 300
