"""Polymarket parsers against every relevant recording, and against mutated payloads."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.categories import load_categories
from exporter.errors import ParseError
from exporter.model import MarketStatus, Side
from exporter.normalize.polymarket import (
    EventContext,
    GammaEventsPage,
    decode_event,
    decode_market,
    event_context,
    parse_book,
    parse_market,
    parse_midpoint,
    parse_trade,
)
from tests.support.venues import mutate, recorded_lines, recording

RECEIVED = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CONTEXT = EventContext("30829", "Democratic Presidential Nominee 2028", "dem-2028", "Elections", ())
TOKEN_LIVE = "101087546793460668089722484262497722099099025064766596498633434617024069399426"


def test_live_market() -> None:
    parsed = parse_market(recording("polymarket/gamma_market_live_2026-06.json"), RECEIVED, CONTEXT)
    market = parsed.market
    assert market.market_id.startswith("polymarket:0x")
    assert len(market.native_id) == 66
    assert market.status is MarketStatus.OPEN
    assert market.category == "Elections"
    assert market.url == "https://polymarket.com/event/dem-2028"
    assert market.volume_total == pytest.approx(float(recording(
        "polymarket/gamma_market_live_2026-06.json")["volumeNum"]))  # fmt: skip
    assert [o.name for o in parsed.outcomes] == ["Yes", "No"]
    assert [o.position for o in parsed.outcomes] == [0, 1]
    yes, no = parsed.snapshots
    raw = recording("polymarket/gamma_market_live_2026-06.json")
    assert (yes.bid, yes.ask, yes.last_trade) == (
        raw["bestBid"],
        raw["bestAsk"],
        raw["lastTradePrice"],
    )
    assert yes.price == pytest.approx((raw["bestBid"] + raw["bestAsk"]) / 2)  # spread <= 0.10
    assert no.bid == pytest.approx(1 - raw["bestAsk"])
    assert no.ask == pytest.approx(1 - raw["bestBid"])
    assert yes.time == RECEIVED
    assert yes.volume_24h == raw["volume24hr"]
    assert all(len(t) > 70 and t.isdigit() for t in parsed.tokens)  # token ids stay strings


def test_updown_market_outcome_names_and_tokens() -> None:
    raw = recording("polymarket/gamma_market_btc_updown_5m_2026-03.json")
    parsed = parse_market(raw, RECEIVED, CONTEXT)
    assert [o.name for o in parsed.outcomes] == ["Up", "Down"]
    assert parsed.outcomes[0].native_id == parsed.tokens[0]


def test_closed_market_is_resolved_without_snapshots() -> None:
    raw = recording("polymarket/gamma_market_closed_2026.json")
    parsed = parse_market(raw, RECEIVED, CONTEXT)
    assert raw["outcomePrices"] == '["1", "0"]'
    assert parsed.market.status is MarketStatus.RESOLVED
    assert parsed.snapshots == []


def test_legacy_scalar_market() -> None:
    parsed = parse_market(
        recording("polymarket/gamma_market_legacy_scalar_2020.json"), RECEIVED, CONTEXT
    )
    assert [o.name for o in parsed.outcomes] == ["Long", "Short"]
    assert parsed.market.status in (MarketStatus.RESOLVED, MarketStatus.CLOSED)


def test_sports_market_with_alphabetised_keys() -> None:
    parsed = parse_market(
        recording("polymarket/gamma_market_sports_moneyline_2026-04.json"), RECEIVED, CONTEXT
    )
    assert len(parsed.outcomes) == 2
    assert parsed.market.title


def test_events_with_nested_markets_and_tags() -> None:
    categories = load_categories()
    (raw,) = recording("polymarket/gamma_events_2026-03.json")
    context = event_context(raw, categories.polymarket)
    assert context.event_id == "30829"
    assert context.category == "Elections"
    assert context.tags[:3] == ("world-elections", "global-elections", "elections")
    markets = [parse_market(m, RECEIVED, context) for m in raw["markets"]]
    assert len(markets) == 2
    assert all(m.market.event_title == raw["title"] for m in markets)
    assert markets[0].snapshots[0].price == pytest.approx((0.01 + 0.011) / 2)


def test_positionids_as_a_real_array() -> None:
    raw = copy.deepcopy(recording("polymarket/gamma_market_live_2026-06.json"))
    tokens = ["123456789012345678901234567890", "987654321098765432109876543210"]
    del raw["clobTokenIds"]
    raw["version"], raw["positionIds"] = "v2", tokens
    assert parse_market(raw, RECEIVED, CONTEXT).tokens == tuple(tokens)


def test_books_in_both_recorded_forms_pick_the_best_levels() -> None:
    book = recording("polymarket/clob_book_2024-10.json")
    snapshot = parse_book(book, RECEIVED)
    assert snapshot is not None
    bids = [float(level["price"]) for level in book["bids"]]
    asks = [float(level["price"]) for level in book["asks"]]
    assert snapshot.bid == max(bids)
    assert snapshot.ask == min(asks)
    assert snapshot.outcome_id == f"polymarket:{book['asset_id']}"
    assert snapshot.price == snapshot.last_trade or snapshot.ask - snapshot.bid <= 0.1  # type: ignore[operator]
    # One side empty and never traded: no displayed price, so no snapshot (not an error).
    empty = recording("polymarket/clob_book_empty_ask_2026-08-03.json")
    assert parse_book(empty, RECEIVED) is None
    traded = parse_book({**empty, "last_trade_price": "0.003"}, RECEIVED)
    assert traded is not None
    assert (traded.bid, traded.ask, traded.price) == (0.002, None, 0.003)
    assert traded.time == RECEIVED  # our receive time, like every other snapshot


def test_websocket_book_messages_parse_like_rest_books() -> None:
    for message in recorded_lines("polymarket/ws_market_real_messages.jsonl")[:2]:
        snapshot = parse_book(message, RECEIVED)
        assert snapshot is not None
        assert snapshot.bid is not None
        assert snapshot.ask is not None
        assert snapshot.bid < snapshot.ask


def test_midpoint_in_both_key_forms() -> None:
    assert parse_midpoint({"mid": "0.65"}) == 0.65
    assert parse_midpoint({"mid_price": "0.45"}) == 0.45
    with pytest.raises(ParseError):
        parse_midpoint({"price": "0.45"})


def test_data_api_trades() -> None:
    raws = recording("polymarket/data_api_trades_2026-07.json")
    trades = [parse_trade(r) for r in raws]
    first = trades[0]
    assert first.time == datetime.fromtimestamp(1783008527, UTC)
    assert (first.price, first.size, first.side) == (0.765, 15, Side.BUY)
    assert first.trade_id.startswith(raws[0]["transactionHash"] + ":")
    assert first.trader == raws[0]["proxyWallet"]
    assert len({t.trade_id for t in trades}) == len(trades)  # fills of one tx stay apart
    # Ids are stored: the same trade must keep its id whatever the parser's internals (these
    # are the ids the dict-based parser gave before the typed one).
    assert [t.trade_id.split(":")[1] for t in trades] == ["540fcfdfc34e", "7b84310bcb66"]
    assert trades == [parse_trade(orjson.dumps(r)) for r in raws]  # bytes or decoded alike


def test_data_api_v2_snake_case_trades() -> None:
    rows = recording("polymarket/data_api_v2_trades_SANITIZED_2026-08.json")["data"]
    trades = [parse_trade(r) for r in rows]
    assert trades[0].outcome_id == f"polymarket:{rows[0]['token_id']}"
    assert trades[0].trade_id.startswith(rows[0]["transaction_hash"])
    assert (trades[0].price, trades[0].size, trades[0].side) == (0.7, 92.59, Side.SELL)
    assert trades[0].trader == rows[0]["proxy_wallet"]
    assert [t.trade_id.split(":")[1] for t in trades[:2]] == ["a33cb052bdf0", "9ee1501983b5"]


def test_fields_that_are_strings_ints_or_absent() -> None:
    raw = copy.deepcopy(recording("polymarket/gamma_market_live_2026-06.json"))
    raw["bestBid"], raw["bestAsk"], raw["volume24hr"] = "0.2", 0.3, "1234.5"
    del raw["lastTradePrice"]
    del raw["liquidityNum"]
    parsed = parse_market(raw, RECEIVED, CONTEXT)
    yes = parsed.snapshots[0]
    assert (yes.bid, yes.ask, yes.last_trade) == (0.2, 0.3, None)  # absent is None, not 0
    assert yes.price == pytest.approx(0.25)  # no last trade: the midpoint
    assert parsed.market.volume_24h == 1234.5
    assert parsed.market.liquidity == float(raw["liquidity"])


@pytest.mark.parametrize(("bid", "ask"), [(0, 1), (0, 0.4), ("0", "1")])
def test_gammas_empty_side_placeholders_are_not_quotes(bid: object, ask: object) -> None:
    """bestBid 0 / bestAsk 1 stand for an empty side (API_NOTES §1.2): no bid or ask stored, no
    midpoint made of them; the price is the last trade, else the displayed outcomePrices."""
    raw = copy.deepcopy(recording("polymarket/gamma_market_live_2026-06.json"))
    raw["bestBid"], raw["bestAsk"] = bid, ask
    raw["outcomePrices"] = '["0.37", "0.63"]'
    del raw["lastTradePrice"]
    yes, no = parse_market(raw, RECEIVED, CONTEXT).snapshots
    real_ask = None if float(str(ask)) >= 1 else float(str(ask))
    assert (yes.bid, yes.ask) == (None, real_ask)
    assert (no.bid, no.ask) == (None if real_ask is None else pytest.approx(1 - real_ask), None)
    assert (yes.price, no.price) == (0.37, 0.63)  # never the placeholders' 0.5
    raw["lastTradePrice"] = 0.41
    yes, no = parse_market(raw, RECEIVED, CONTEXT).snapshots
    assert (yes.price, no.price) == (0.41, pytest.approx(0.59))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("clobTokenIds", '["123', "clobTokenIds is not valid JSON"),
        ("outcomePrices", '["0.5", "n/a"]', "outcomePrices holds"),
        ("bestBid", "NaN", "bestBid is not finite"),
        ("bestAsk", 7, "bestAsk is outside 0..1"),
        ("conditionId", None, "conditionId is missing"),
    ],
)
def test_malformed_markets_name_the_field(key: str, value: object, message: str) -> None:
    raw = copy.deepcopy(recording("polymarket/gamma_market_live_2026-06.json"))
    raw[key] = value
    with pytest.raises(ParseError, match=message):
        parse_market(raw, RECEIVED, CONTEXT)


# --- mutated payloads: nothing but ParseError may escape -----------------------------------------


def _only_parse_errors(call: Any) -> None:
    try:
        result = call()
    except ParseError:
        return
    for snapshot in getattr(result, "snapshots", []):
        assert 0 <= snapshot.price <= 1
        assert math.isfinite(snapshot.price)


CATEGORIES = load_categories()
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_mutated_markets_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = mutate(recording("polymarket/gamma_market_live_2026-06.json"), data)
    _only_parse_errors(lambda: parse_market(raw, RECEIVED, CONTEXT))


@FUZZ
@given(st.data())
def test_mutated_books_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = mutate(recording("polymarket/clob_book_2024-10.json"), data)
    _only_parse_errors(lambda: parse_book(raw, RECEIVED))


@FUZZ
@given(st.data())
def test_mutated_trades_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = mutate(recording("polymarket/data_api_trades_2026-07.json")[0], data)
    _only_parse_errors(lambda: parse_trade(raw))


@FUZZ
@given(st.data())
def test_mutated_events_and_midpoints_raise_only_parse_errors(data: st.DataObject) -> None:
    (event,) = recording("polymarket/gamma_events_2026-03.json")
    raw = mutate(event, data)
    categories = CATEGORIES
    _only_parse_errors(lambda: event_context(raw, categories.polymarket))
    _only_parse_errors(lambda: parse_midpoint(mutate({"mid": "0.5"}, data)))


# --- typed decoding straight from the bytes ---------------------------------------------------


def test_a_page_decoded_from_bytes_parses_as_the_recording_and_skips_one_bad_market_alone() -> None:
    events = recording("polymarket/gamma_events_2026-03.json")
    good = events[0]["markets"][0]
    broken = copy.deepcopy(good) | {"conditionId": 7}  # a number where Gamma sends a string
    events[0]["markets"] = [good, broken, good]
    body = orjson.dumps({"events": events, "next_cursor": "abc"})
    page = msgspec.json.decode(body, type=GammaEventsPage)
    assert page.next_cursor == "abc"
    (raw_event,) = page.events
    event = decode_event(raw_event)
    context = event_context(event, load_categories().polymarket)
    assert context == event_context(recording("polymarket/gamma_events_2026-03.json")[0],
                                    load_categories().polymarket)  # fmt: skip
    parsed, refused = [], []
    for raw in event.markets or []:
        try:
            parsed.append(parse_market(decode_market(raw), RECEIVED, context))
        except ParseError as error:
            refused.append(str(error))
    assert refused == ["polymarket market: conditionId: expected `str | null`, got `int`"]
    assert parsed == [parse_market(good, RECEIVED, context)] * 2
    with pytest.raises(ParseError, match="polymarket event: markets: expected"):
        decode_event(orjson.dumps({"id": "1", "markets": {"not": "a list"}}))
