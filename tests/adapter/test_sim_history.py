"""The simulator's history endpoints: the world's past before the start, the venues' limits, the
recordings' shapes, and one truth whatever the route or resolution."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.world import KalshiMarket, PolyMarket
from tests.support.venues import recorded_lines, recording, shape_problems

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
DAY = 86400


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    scenario = load_scenario({"seed": 5, "universe": {"polymarket": 60, "kalshi": 200}})
    async with Simulator(scenario, clock=ManualClock(START)) as simulator:
        simulator.advance(600)
        yield simulator


async def _call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.request(method, url, **kwargs)


def _poly(sim: Simulator, older_than_days: float = 8) -> PolyMarket:
    return next(
        m
        for m in sim.world.open_markets("polymarket")
        if isinstance(m, PolyMarket) and (START - m.created).total_seconds() > older_than_days * DAY
    )


async def test_prices_history_reaches_into_the_past_and_agrees_across_fidelities(
    sim: Simulator,
) -> None:
    assert sim.urls is not None
    market = _poly(sim)
    token = market.tokens[0]
    now = int(sim.clock.now().timestamp())
    params = {"market": token, "startTs": now - 7 * DAY, "endTs": now}
    minutes = (await _call("GET", f"{sim.urls.clob}/prices-history",
                           params={**params, "fidelity": 1})).json()["history"]  # fmt: skip
    hours = (await _call("GET", f"{sim.urls.clob}/prices-history",
                         params={**params, "fidelity": 60})).json()["history"]  # fmt: skip
    assert len(minutes) == 7 * 1440 + 1
    assert minutes[0]["t"] == now - 7 * DAY
    by_time = {p["t"]: p["p"] for p in minutes}
    assert hours
    assert all(by_time[p["t"]] == p["p"] for p in hours)
    assert len({p["p"] for p in minutes}) > 5  # the past moves
    # The other token is its complement; the batch route serves the same points.
    batch = await _call("POST", f"{sim.urls.clob}/batch-prices-history", json={
        "markets": list(market.tokens), "start_ts": now - 7 * DAY, "end_ts": now, "fidelity": 60,
    })  # fmt: skip
    served = batch.json()["history"]
    assert served[token] == hours
    assert [round(1 - p["p"], 4) for p in served[market.tokens[1]]] == [p["p"] for p in hours]


async def test_prices_history_starts_at_the_markets_creation(sim: Simulator) -> None:
    assert sim.urls is not None
    market = next(
        m for m in sim.world.open_markets("polymarket")
        if isinstance(m, PolyMarket) and (START - m.created).total_seconds() < 14 * DAY
    )  # fmt: skip
    now = int(sim.clock.now().timestamp())
    points = (await _call("GET", f"{sim.urls.clob}/prices-history", params={
        "market": market.tokens[0], "startTs": now - 15 * DAY, "endTs": now, "fidelity": 60,
    })).json()["history"]  # fmt: skip
    assert points[0]["t"] >= market.created.timestamp() > points[0]["t"] - 3600


async def test_batch_prices_history_limits(sim: Simulator) -> None:
    assert sim.urls is not None
    url = f"{sim.urls.clob}/batch-prices-history"
    tokens = [t for m in sim.world.open_markets("polymarket")[:11] for t in m.tokens]  # type: ignore[attr-defined]
    now = int(sim.clock.now().timestamp())
    window = {"start_ts": now - DAY, "end_ts": now, "fidelity": 60}
    too_many = await _call("POST", url, json={"markets": tokens[:21], **window})
    too_long = await _call(
        "POST", url, json={"markets": tokens[:2], "start_ts": now - 16 * DAY, "end_ts": now}
    )
    unknown = await _call("POST", url, json={"markets": [tokens[0], "123"], **window})
    assert too_many.status_code == too_long.status_code == 400
    assert set(unknown.json()["history"]) == {tokens[0]}


async def test_kalshi_batch_candles_limits_and_agreement(sim: Simulator) -> None:
    assert sim.urls is not None
    rest = sim.urls.kalshi_rest
    markets = [m for m in sim.world.open_markets("kalshi") if isinstance(m, KalshiMarket)]
    old = [m for m in markets if (START - m.created).total_seconds() > 8 * DAY][:3]
    now = int(sim.clock.now().timestamp())
    tickers = ",".join(m.ticker for m in old)
    batch = await _call("GET", f"{rest}/markets/candlesticks", params={
        "market_tickers": tickers, "start_ts": now - 7 * DAY, "end_ts": now, "period_interval": 60,
    })  # fmt: skip
    assert batch.status_code == 200, batch.text
    served = {m["market_ticker"]: m["candlesticks"] for m in batch.json()["markets"]}
    assert list(served) == [m.ticker for m in old]
    one = old[0]
    single = await _call(
        "GET", f"{rest}/series/{one.event.series.ticker}/markets/{one.ticker}/candlesticks",
        params={"start_ts": now - 7 * DAY, "end_ts": now, "period_interval": 60},
    )  # fmt: skip
    assert single.json()["candlesticks"] == served[one.ticker]
    candles = served[one.ticker]
    assert len(candles) == 7 * 24  # ends on the hour, the first after now - 7 days
    recorded = recorded_lines("kalshi/candlestick_items_2026-09.jsonl")[:2]
    assert shape_problems(candles, recorded) == []
    assert any("close_dollars" not in c["price"] for c in candles)  # periods without trades
    assert any("close_dollars" in c["price"] for c in candles)
    # Minute candles: the hour's close is the close of its last minute.
    minutes = await _call("GET", f"{rest}/markets/candlesticks", params={
        "market_tickers": one.ticker, "start_ts": now - DAY, "end_ts": now, "period_interval": 1,
    })  # fmt: skip
    closes = {c["end_period_ts"]: c["yes_bid"]["close_dollars"]
              for c in minutes.json()["markets"][0]["candlesticks"]}  # fmt: skip
    hourly = [c for c in candles if c["end_period_ts"] in closes]
    assert hourly
    assert all(closes[c["end_period_ts"]] == c["yes_bid"]["close_dollars"] for c in hourly)
    too_many = await _call("GET", f"{rest}/markets/candlesticks", params={
        "market_tickers": ",".join(m.ticker for m in old[:2]), "start_ts": now - 7 * DAY,
        "end_ts": now, "period_interval": 1,
    })  # fmt: skip
    assert too_many.status_code == 400  # 10,081 minutes a market > 10,000
    tickers_101 = await _call("GET", f"{rest}/markets/candlesticks", params={
        "market_tickers": ",".join(m.ticker for m in markets[:101]), "start_ts": now - 3600,
        "end_ts": now, "period_interval": 60,
    })  # fmt: skip
    assert len(markets) > 100
    assert tickers_101.status_code == 400


async def test_kalshi_historical_split(sim: Simulator) -> None:
    assert sim.urls is not None
    rest = sim.urls.kalshi_rest
    cutoff = (await _call("GET", f"{rest}/historical/cutoff")).json()
    assert set(cutoff) == set(recording("kalshi/historical_cutoff_2026-09-26.json"))
    settled = next(
        m for m in sim.world.kalshi_markets
        if m.kalshi_status == "finalized" and (START - m.created).total_seconds() > 8 * DAY
    )  # fmt: skip
    now = int(sim.clock.now().timestamp())
    params = {"start_ts": now - 2 * DAY, "end_ts": now - DAY, "period_interval": 60}
    live = await _call(
        "GET",
        f"{rest}/series/{settled.event.series.ticker}/markets/{settled.ticker}/candlesticks",
        params=params,
    )
    archived = await _call(
        "GET", f"{rest}/historical/markets/{settled.ticker}/candlesticks", params=params
    )
    assert live.status_code == 404
    candles = archived.json()["candlesticks"]
    assert candles
    assert (
        shape_problems(candles, recorded_lines("kalshi/candlestick_items_2026-09.jsonl")[2:]) == []
    )
    open_one = sim.world.open_markets("kalshi")[0]
    refused = await _call("GET", f"{rest}/historical/markets/{open_one.key}/candlesticks",
                          params=params)  # fmt: skip
    assert refused.status_code == 404


async def test_a_twin_follows_its_market_now_and_in_the_past_until_a_jump_pins_it() -> None:
    """Cross-venue twins: the Kalshi market's price is its Polymarket market's (1 - it when it
    asks the opposite question) in the served past and as the world moves, within a tick and
    the two spreads; a scripted jump pins the twin, which then stays while its market moves."""
    scenario = load_scenario({
        "seed": 8, "universe": {"polymarket": 120, "kalshi": 60},
        "pairs": {"count": 12, "lookalikes": 6, "inverse_share": 0.5},
        "timeline": [{"at": "20m", "jump": {"venue": "kalshi", "market": "twin:1", "to": 0.5}}],
    })  # fmt: skip
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        assert sim.urls is not None
        world = sim.world
        assert len(world.twins) == 12
        assert len(world.lookalikes) == 6
        assert {t.inverse for t in world.twins} == {True, False}
        assert world.market("kalshi", "twin:1") is world.twins[1].kalshi
        assert world.market("polymarket", "twin:1") is world.twins[1].polymarket
        with pytest.raises(LookupError, match="12 twins"):
            world.market("kalshi", "twin:12")

        def apart(twin: Any) -> float:
            """Thousandths between the twin's mid and its market's (oriented)."""
            leader, kalshi = twin.polymarket, twin.kalshi
            mid = (leader.bid_m + leader.ask_m) / 2
            return abs((1000 - mid if twin.inverse else mid) - (kalshi.bid_m + kalshi.ask_m) / 2)

        followed = [t for i, t in enumerate(world.twins) if i != 1]
        moved = {t.kalshi.key: (t.kalshi.bid_m, t.kalshi.ask_m) for t in followed}
        sim.advance(3600)
        assert all(apart(t) <= 10 for t in followed), [apart(t) for t in followed]
        assert any((t.kalshi.bid_m, t.kalshi.ask_m) != moved[t.kalshi.key] for t in followed)
        pinned = world.twins[1]
        assert (pinned.kalshi.bid_m + pinned.kalshi.ask_m) / 2 == 500
        # The pinned twin stays where the jump left it, whatever its market does.
        assert all(q[1:3] == (pinned.kalshi.bid_m, pinned.kalshi.ask_m)
                   for q in pinned.kalshi.history if q[0] > 1200)  # fmt: skip

        # The served past: the twin's hourly candles close where its market's price was.
        twin = next(t for t in followed if (START - t.kalshi.created).days > 3)
        now = int(sim.clock.now().timestamp())
        start = now - 2 * DAY
        candles = (await _call("GET", f"{sim.urls.kalshi_rest}/markets/candlesticks", params={
            "market_tickers": twin.kalshi.ticker, "start_ts": start, "end_ts": now - 2 * 3600,
            "period_interval": 60,
        })).json()["markets"][0]["candlesticks"]  # fmt: skip
        points = (await _call("GET", f"{sim.urls.clob}/prices-history", params={
            "market": twin.polymarket.tokens[0], "startTs": start, "endTs": now, "fidelity": 60,
        })).json()["history"]  # fmt: skip
        price = {p["t"]: p["p"] for p in points}
        compared = 0
        for candle in candles:
            end = candle["end_period_ts"]
            if end not in price or end > START.timestamp():
                continue
            mid = (float(candle["yes_bid"]["close_dollars"])
                   + float(candle["yes_ask"]["close_dollars"])) / 2  # fmt: skip
            theirs = 1 - price[end] if twin.inverse else price[end]
            assert abs(mid - theirs) <= 0.02, (end, mid, theirs)
            compared += 1
        assert compared >= 24
