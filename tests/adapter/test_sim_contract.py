"""Contract tests: every simulator response against the real recorded payloads.

Same keys, same JSON type per key, same quirks, so the simulator cannot drift from the venues.
Where the recordings predate a documented schema change (Kalshi's 2026-03-12 fixed-point
migration, API_NOTES 2.1), the difference is listed here explicitly.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from exporter.sim import ManualClock, Simulator, load_scenario
from tests.support.venues import recorded_lines, recording, shape_problems

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GAMMA_MARKETS = [
    recording(f"polymarket/{name}")
    for name in (
        "gamma_market_live_2026-06.json",
        "gamma_market_btc_updown_5m_2026-03.json",
        "gamma_market_sports_moneyline_2026-04.json",
        "gamma_market_closed_2026.json",
    )
]
GAMMA_EVENTS = recording("polymarket/gamma_events_2026-03.json")
# Optional on the venue: absent on many markets and events ("often absent (not null)").
GAMMA_OPTIONAL = frozenset(
    {"oneWeekPriceChange", "oneMonthPriceChange", "startTime", "countryName", "electionType"}
)
# A market nested in an event lacks these (gamma_events_2026-03.json).
NESTED_LACKS = frozenset({"events", "clobRewards", "feeSchedule", "makerBaseFee", "takerBaseFee"})
KALSHI_MARKETS = (
    [recording("kalshi/market_single_2026-01-12.json")["market"]]
    + recording("kalshi/markets_list_2026-01-12.json")["markets"]
    + recording("kalshi/event_single_2026-01-12.json")["markets"]
)
# API_NOTES 2.1: integer cent and count fields were removed on 2026-03-12 (the recordings are
# from January) and replaced by strings; the size and count strings are newer than them.
KALSHI_REMOVED = frozenset(
    {
        "yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "previous_price",
        "previous_yes_bid", "previous_yes_ask", "volume", "volume_24h", "open_interest",
        "liquidity", "notional_value", "tick_size", "response_price_units",
    }
)  # fmt: skip
KALSHI_ADDED = frozenset(
    {"yes_bid_size_fp", "yes_ask_size_fp", "volume_fp", "volume_24h_fp", "open_interest_fp"}
)
DOLLARS = re.compile(r"^[01]\.\d{4}$")
FP = re.compile(r"^-?\d+\.\d{2}$")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    scenario = load_scenario({"seed": 11, "universe": {"polymarket": 120, "kalshi": 200}})
    async with Simulator(scenario, clock=ManualClock(START)) as simulator:
        simulator.advance(900)  # fifteen minutes of trading: trades, moved prices
        yield simulator


async def _get(url: str, **params: Any) -> Any:
    async with httpx.AsyncClient() as client:
        response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_gamma_markets_match_the_recordings(sim: Simulator) -> None:
    assert sim.urls is not None
    served = await _get(f"{sim.urls.gamma}/markets", limit=100)
    served += await _get(f"{sim.urls.gamma}/markets", limit=100, closed="true")
    assert shape_problems(served, GAMMA_MARKETS, optional=GAMMA_OPTIONAL) == []
    for market in served:
        # The JSON-in-a-string quirk, and string volumes.
        outcomes = json.loads(market["outcomes"])
        prices = json.loads(market["outcomePrices"])
        tokens = json.loads(market["clobTokenIds"])
        assert len(outcomes) == len(prices) == len(tokens) == 2
        assert all(isinstance(t, str) and t.isdigit() and len(t) > 20 for t in tokens)
        assert all(0 <= float(p) <= 1 for p in prices)
        float(market["volume"]), float(market["liquidity"])
        if market["closed"]:
            assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00$", market["closedTime"])
    assert any(m["closed"] for m in served)
    assert any(not m["closed"] for m in served)


async def test_gamma_events_match_the_recording(sim: Simulator) -> None:
    assert sim.urls is not None
    served = await _get(f"{sim.urls.gamma}/events", limit=100)
    keyset = await _get(f"{sim.urls.gamma}/events/keyset", limit=20)
    assert set(keyset) == {"events", "next_cursor"}
    for events in (served, keyset["events"]):
        # closedTime appears on closed markets (gamma_market_closed_2026.json); the recorded
        # event is open, so its nested markets lack it.
        assert shape_problems(events, GAMMA_EVENTS, optional=GAMMA_OPTIONAL,
                              documented=frozenset({"closedTime"})) == []  # fmt: skip
        nested = [m for e in events for m in e["markets"]]
        recorded_nested = GAMMA_MARKETS + GAMMA_EVENTS[0]["markets"]
        assert shape_problems(nested, recorded_nested, optional=GAMMA_OPTIONAL | NESTED_LACKS) == []
        # Event numbers are numbers, unlike the market's string volume and liquidity.
        assert all(isinstance(e["volume"], float | int) for e in events)
    assert any(e["negRisk"] and len(e["markets"]) > 2 for e in served)


async def test_gamma_tags_match_the_recording(sim: Simulator) -> None:
    assert sim.urls is not None
    served = await _get(f"{sim.urls.gamma}/tags")
    recorded = recording("polymarket/gamma_tags_2026-03.json") + GAMMA_EVENTS[0]["tags"]
    assert shape_problems(served, recorded, optional=frozenset({"publishedAt"})) == []


async def test_clob_book_matches_the_recording_and_its_reversed_order(sim: Simulator) -> None:
    assert sim.urls is not None
    market = sim.world.open_markets("polymarket")[0]
    token = market.tokens[0]  # type: ignore[attr-defined]
    book = await _get(f"{sim.urls.clob}/book", token_id=token)
    recorded = [recording("polymarket/clob_book_empty_ask_2026-08-03.json")]
    assert shape_problems([book], recorded) == []
    bids = [float(level["price"]) for level in book["bids"]]
    asks = [float(level["price"]) for level in book["asks"]]
    # Best bid and best ask are the *last* elements: bids ascending, asks descending.
    assert bids == sorted(bids)
    assert asks == sorted(asks, reverse=True)
    assert bids[-1] < asks[-1]
    assert all(isinstance(level["size"], str) for level in book["bids"] + book["asks"])
    assert book["timestamp"].isdigit()
    assert len(book["timestamp"]) == 13


async def test_clob_batch_and_price_endpoints(sim: Simulator) -> None:
    assert sim.urls is not None
    markets = sim.world.open_markets("polymarket")[:3]
    tokens = [m.tokens[0] for m in markets]  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as client:
        books = (await client.post(f"{sim.urls.clob}/books",
                                   json=[{"token_id": t} for t in tokens])).json()  # fmt: skip
        too_many = await client.post(f"{sim.urls.clob}/books", json=[{"token_id": tokens[0]}] * 501)
        mids = (await client.post(f"{sim.urls.clob}/midpoints",
                                  json=[{"token_id": t} for t in tokens])).json()  # fmt: skip
    assert [b["asset_id"] for b in books] == tokens
    assert too_many.status_code == 400
    assert too_many.json() == {"error": "Payload exceeds the limit"}
    assert set(mids) == set(tokens)
    assert all(isinstance(v, str) for v in mids.values())
    mid = await _get(f"{sim.urls.clob}/midpoint", token_id=tokens[0])
    assert set(mid) == {"mid"}
    assert float(mid["mid"]) == pytest.approx(float(mids[tokens[0]]))
    price = await _get(f"{sim.urls.clob}/price", token_id=tokens[0], side="BUY")
    assert float(price["price"]) == float(books[0]["bids"][-1]["price"])  # BUY -> best bid
    prices = await _get(f"{sim.urls.clob}/prices", token_ids=",".join(tokens[:2]), sides="BUY,SELL")
    assert set(prices[tokens[1]]) == {"SELL"}
    last = await _get(f"{sim.urls.clob}/last-trades-prices", token_ids=",".join(tokens))
    assert [set(r) for r in last] == [{"token_id", "price", "side"}] * 3
    async with httpx.AsyncClient() as client:
        missing = await client.get(f"{sim.urls.clob}/book", params={"token_id": "123"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "No orderbook exists for the requested token id"}


async def test_prices_history_rules(sim: Simulator) -> None:
    assert sim.urls is not None
    token = sim.world.open_markets("polymarket")[0].tokens[0]  # type: ignore[attr-defined]
    now = int(sim.clock.now().timestamp())
    history = await _get(f"{sim.urls.clob}/prices-history", market=token, interval="1h")
    assert set(history) == {"history"}
    points = history["history"]
    assert len(points) == 61  # the last hour, minute by minute: the world's past included
    assert points[-1]["t"] <= now < points[-1]["t"] + 60
    assert all(isinstance(p["t"], int) and isinstance(p["p"], float) for p in points)
    async with httpx.AsyncClient() as client:
        too_long = await client.get(
            f"{sim.urls.clob}/prices-history",
            params={"market": token, "startTs": now - 16 * 86400, "endTs": now},
        )
        coarse = await client.get(
            f"{sim.urls.clob}/prices-history",
            params={"market": token, "interval": "1m", "fidelity": 1},
        )
    assert too_long.status_code == 400
    assert too_long.json() == {"error": "'startTs' and 'endTs' interval is too long"}
    assert coarse.status_code == 400


async def test_data_api_trades_match_the_recording(sim: Simulator) -> None:
    assert sim.urls is not None
    served = await _get(f"{sim.urls.data}/trades", limit=200)
    assert len(served) > 10
    assert shape_problems(served, recording("polymarket/data_api_trades_2026-07.json")) == []
    stamps = [t["timestamp"] for t in served]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    start = int(START.timestamp())
    assert all(start <= s <= start + 900 for s in stamps)  # unix seconds
    one = served[0]["conditionId"]
    mine = await _get(f"{sim.urls.data}/trades", market=one)
    assert mine
    assert {t["conditionId"] for t in mine} == {one}
    async with httpx.AsyncClient() as client:
        deep = await client.get(f"{sim.urls.data}/trades", params={"offset": 10_001})
    assert deep.status_code == 400


async def test_kalshi_markets_match_the_recordings_after_the_migration(sim: Simulator) -> None:
    assert sim.urls is not None
    page = await _get(f"{sim.urls.kalshi_rest}/markets", limit=200)
    assert set(page) == {"markets", "cursor"}
    served = page["markets"]
    assert shape_problems(
        served, KALSHI_MARKETS, optional=KALSHI_REMOVED | {"custom_strike", "mve_collection_ticker",
        "mve_selected_legs"}, documented=KALSHI_ADDED,
    ) == []  # fmt: skip
    for market in served:
        assert not KALSHI_REMOVED & set(market), "legacy integer fields must be gone"
        for key in ("yes_bid_dollars", "yes_ask_dollars", "no_bid_dollars", "last_price_dollars"):
            assert DOLLARS.match(market[key]), (key, market[key])
        for key in ("volume_fp", "volume_24h_fp", "open_interest_fp", "yes_bid_size_fp"):
            assert FP.match(market[key]), (key, market[key])
        assert "category" not in market
    statuses = {m["status"] for m in served}
    assert "active" in statuses
    assert statuses <= {
        "initialized",
        "active",
        "inactive",
        "closed",
        "determined",
        "finalized",
    }


async def test_kalshi_events_series_trades_match_the_recordings(sim: Simulator) -> None:
    assert sim.urls is not None
    events = await _get(f"{sim.urls.kalshi_rest}/events", limit=50, with_nested_markets="true")
    recorded_events = recording("kalshi/events_list_2026-01-12.json")["events"]
    plain = [{k: v for k, v in e.items() if k != "markets"} for e in events["events"]]
    assert shape_problems(plain, recorded_events) == []
    assert all(e["markets"] for e in events["events"])
    series = await _get(f"{sim.urls.kalshi_rest}/series")
    recorded_series = recording("kalshi/series_list_category_climate_2026-01-12.json")["series"]
    assert shape_problems(series["series"], recorded_series) == []
    assert any(s["tags"] is None for s in series["series"])  # tags: array or null
    trades = await _get(f"{sim.urls.kalshi_rest}/markets/trades", limit=100)
    assert shape_problems(
        trades["trades"], recorded_lines("kalshi/trades_items_2026.jsonl"),
        optional=frozenset({"is_block_trade"}),
    ) == []  # fmt: skip
    times = [t["created_time"] for t in trades["trades"]]
    assert times == sorted(times, reverse=True)


async def test_kalshi_orderbook_and_candles_match_the_recordings(sim: Simulator) -> None:
    assert sim.urls is not None
    market = sim.world.open_markets("kalshi")[0]
    book = await _get(f"{sim.urls.kalshi_rest}/markets/{market.key}/orderbook")
    assert shape_problems([book], [recording("kalshi/orderbook_fp_docs_example.json")]) == []
    for side in ("yes_dollars", "no_dollars"):
        prices = [float(p) for p, _ in book["orderbook_fp"][side]]
        assert prices == sorted(prices)  # bids only, ascending: best last
    best_yes_bid = float(book["orderbook_fp"]["yes_dollars"][-1][0])
    best_no_bid = float(book["orderbook_fp"]["no_dollars"][-1][0])
    assert best_yes_bid < 1 - best_no_bid  # the YES ask is 1 - the best NO bid
    series = market.event.series.ticker  # type: ignore[attr-defined]
    now = int(sim.clock.now().timestamp())
    candles = await _get(
        f"{sim.urls.kalshi_rest}/series/{series}/markets/{market.key}/candlesticks",
        start_ts=now - 900, end_ts=now, period_interval=1,
    )  # fmt: skip
    recorded = recorded_lines("kalshi/candlestick_items_2026-09.jsonl")[:2]
    assert shape_problems(candles["candlesticks"], recorded) == []
    assert len(candles["candlesticks"]) == 16  # each minute ending in start_ts..end_ts


async def test_kalshi_429_bodies_take_both_observed_forms_without_retry_after() -> None:
    scenario = load_scenario({"universe": {"polymarket": 5, "kalshi": 5},
                              "timeline": [{"rate_limit": {"venue": "kalshi"}}]})  # fmt: skip
    async with Simulator(scenario, clock=ManualClock(START)) as sim, httpx.AsyncClient() as client:
        assert sim.urls is not None
        responses = [await client.get(f"{sim.urls.kalshi_rest}/markets") for _ in range(2)]
    assert [r.status_code for r in responses] == [429, 429]
    assert [r.json() for r in responses] == recorded_lines("kalshi/error_bodies.jsonl")[:2]
    assert not any("retry-after" in r.headers for r in responses)


async def test_kalshi_single_market_event_and_series_match_the_recordings(sim: Simulator) -> None:
    assert sim.urls is not None
    market = sim.world.open_markets("kalshi")[0]
    single = await _get(f"{sim.urls.kalshi_rest}/markets/{market.key}")
    assert set(single) == {"market"}
    assert shape_problems(
        [single["market"]], KALSHI_MARKETS,
        optional=KALSHI_REMOVED | {"custom_strike", "mve_collection_ticker", "mve_selected_legs"},
        documented=KALSHI_ADDED,
    ) == []  # fmt: skip
    event_ticker = single["market"]["event_ticker"]
    event = await _get(f"{sim.urls.kalshi_rest}/events/{event_ticker}")
    recorded = recording("kalshi/event_single_2026-01-12.json")
    assert set(event) == set(recorded)
    assert shape_problems([event["event"]], [recorded["event"]]) == []
    series_ticker = event["event"]["series_ticker"]
    series = await _get(f"{sim.urls.kalshi_rest}/series/{series_ticker}")
    assert shape_problems([series["series"]], [recording("kalshi/series_single_2026-01-12.json")
                                               ["series"]]) == []  # fmt: skip
