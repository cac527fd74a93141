"""Kalshi parsers against every relevant recording (old and new field forms), and fuzzed."""

from __future__ import annotations

import contextlib
import copy
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
from exporter.normalize.kalshi import (
    EventInfo,
    KalshiMarketsPage,
    decode_market,
    parse_event,
    parse_market,
    parse_series,
    parse_trade,
)
from tests.support.venues import mutate, recorded_lines, recording

RECEIVED = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ELON = EventInfo("KXELONMARS-99", "KXELONMARS", "Will Elon Musk visit Mars in his lifetime?")


def test_old_form_market_with_cents_and_integer_counts() -> None:
    raw = recording("kalshi/event_single_2026-01-12.json")["markets"][0]
    parsed = parse_market(raw, RECEIVED, ELON, "World")
    market, snapshot = parsed.market, parsed.snapshot
    assert market.market_id == "kalshi:KXELONMARS-99"
    assert market.title == "Will Elon Musk visit Mars in his lifetime? — Mars"
    assert market.status is MarketStatus.OPEN
    assert market.category == "World"
    assert (market.volume_total, market.volume_24h, market.open_interest) == (35001, 10, 13679)
    assert market.liquidity is None  # deprecated on the venue
    assert market.end_time == datetime(2099, 8, 1, 4, 59, tzinfo=UTC)
    assert parsed.outcome.outcome_id == "kalshi:KXELONMARS-99"
    assert parsed.outcome.position == 0
    assert snapshot is not None
    assert (snapshot.bid, snapshot.ask, snapshot.last_trade) == (0.06, 0.07, 0.06)
    assert snapshot.price == pytest.approx(0.065)


def test_new_form_market_with_strings_and_zero_size_sides() -> None:
    raw = copy.deepcopy(recording("kalshi/event_single_2026-01-12.json")["markets"][0])
    for legacy in ("yes_bid", "yes_ask", "no_bid", "no_ask", "last_price", "volume",
                   "volume_24h", "open_interest", "liquidity"):  # fmt: skip
        raw.pop(legacy, None)
    raw |= {
        "yes_bid_dollars": "0.4100", "yes_ask_dollars": "0.6400", "last_price_dollars": "0.4500",
        "yes_bid_size_fp": "120.00", "yes_ask_size_fp": "0.00", "volume_fp": "1234.56",
        "volume_24h_fp": "78.90", "open_interest_fp": "55.00",
    }  # fmt: skip
    parsed = parse_market(raw, RECEIVED, ELON, "World")
    snapshot = parsed.snapshot
    assert snapshot is not None
    assert (snapshot.bid, snapshot.ask) == (0.41, None)  # size 0: no ask
    assert snapshot.price == 0.45  # a side missing: the last trade
    assert parsed.market.volume_total == 1234.56
    assert parsed.market.volume_24h == 78.9


def test_combo_markets_from_the_list_are_flagged_and_unpriced() -> None:
    page = recording("kalshi/markets_list_2026-01-12.json")
    parsed = [parse_market(m, RECEIVED, None, "Other") for m in page["markets"]]
    assert len(parsed) == 5
    assert all(p.multivariate for p in parsed)
    assert all(p.snapshot is None for p in parsed)  # empty books, never traded
    single = parse_market(recording("kalshi/market_single_2026-01-12.json")["market"], RECEIVED,
                          None, "Other")  # fmt: skip
    assert single.market.title.startswith("yes Pittsburgh")


STATUSES = [
    ("initialized", MarketStatus.UPCOMING),
    ("inactive", MarketStatus.PAUSED),
    ("determined", MarketStatus.CLOSED),
    ("finalized", MarketStatus.RESOLVED),
]


def test_status_names_map_onto_ours() -> None:
    raw = copy.deepcopy(recording("kalshi/event_single_2026-01-12.json")["markets"][0])
    for name, ours in STATUSES:
        raw["status"] = name
        parsed = parse_market(raw, RECEIVED, ELON, "World")
        assert parsed.market.status is ours
        assert parsed.snapshot is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"yes_bid_dollars": None, "yes_bid": None}, "yes_bid_dollars is missing"),
        ({"yes_ask_dollars": "n/a"}, "yes_ask_dollars: invalid decimal"),
        ({"last_price_dollars": "1.5000"}, "outside 0..1"),
        ({"volume_24h": None}, "volume_24h_fp is missing"),
        ({"status": "exploded"}, "unknown status"),
        ({"ticker": ""}, "ticker is missing"),
    ],
)
def test_a_missing_or_broken_field_is_an_error_not_zero(
    change: dict[str, Any], message: str
) -> None:
    raw = copy.deepcopy(recording("kalshi/event_single_2026-01-12.json")["markets"][0])
    for key, value in change.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    with pytest.raises(ParseError, match=message):
        parse_market(raw, RECEIVED, ELON, "World")


def test_errors_from_helpers_shared_with_polymarket_are_kalshis() -> None:
    """Times are parsed by the helpers both venues share (normalize/fields.py): their errors
    count as Kalshi's (movers_parse_errors_total{venue="kalshi"})."""
    raw = copy.deepcopy(recording("kalshi/event_single_2026-01-12.json")["markets"][0])
    raw["close_time"] = "not a time"
    with pytest.raises(ParseError, match="close_time is not a time") as market:
        parse_market(raw, RECEIVED, ELON, "World")
    trade = copy.deepcopy(recording("kalshi/trades_list_2026-01-12.json")["trades"][0])
    trade["created_time"] = 12
    with pytest.raises(ParseError, match=r"created_time: expected `str \| null`") as traded:
        parse_trade(trade)
    assert market.value.venue == traded.value.venue == "kalshi"


def test_events_and_series() -> None:
    events = [parse_event(e) for e in recording("kalshi/events_list_2026-01-12.json")["events"]]
    assert events[0] == ELON
    assert {e.series for e in events} >= {"KXELONMARS", "KXNEWPOPE"}
    assert parse_event(recording("kalshi/event_single_2026-01-12.json")["event"]) == ELON
    listed = recording("kalshi/series_list_category_climate_2026-01-12.json")["series"]
    series = [parse_series(s) for s in listed]
    assert series[0] == ("CO2", "Climate and Weather")
    assert parse_series(recording("kalshi/series_single_2026-01-12.json")["series"])[0] == "CO2"
    categories = load_categories()
    assert categories.kalshi("Climate and Weather") == "Weather & Climate"
    assert categories.kalshi("Financials") == "Finance"
    assert categories.kalshi("Something New") == "Other"
    assert categories.unmapped[("kalshi", "Something New")] == 1


def test_trades_in_every_recorded_form() -> None:
    old = [parse_trade(t) for t in recording("kalshi/trades_list_2026-01-12.json")["trades"]]
    assert old[0].trade_id == "961535f3-d80f-5462-e91d-88d4fe6db285"
    assert (old[0].price, old[0].size, old[0].side) == (0.06, 1, Side.SELL)  # taker took NO
    assert old[0].time == datetime(2026, 1, 12, 15, 0, 20, 897212, tzinfo=UTC)
    new = [parse_trade(t) for t in recorded_lines("kalshi/trades_items_2026.jsonl")]
    assert (new[0].price, new[0].size, new[0].side) == (0.41, 4.68, Side.BUY)
    assert new[0].outcome_id == "kalshi:KXBTCD-26MAY3017-T73499.99"
    frames = [
        f["msg"]
        for f in recorded_lines("kalshi/ws_trade_frames_2026.jsonl")
        if f["type"] == "trade"
    ]
    streamed = [parse_trade(m) for m in frames]
    assert streamed[0].time == datetime.fromtimestamp(1776673036, UTC)
    assert streamed[1].side is Side.SELL  # taker_book_side ask


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_mutated_markets_raise_only_parse_errors(data: st.DataObject) -> None:
    raw = mutate(recording("kalshi/event_single_2026-01-12.json")["markets"][0], data)
    try:
        parsed = parse_market(raw, RECEIVED, ELON, "World")
    except ParseError:
        return
    if parsed.snapshot is not None:
        assert 0 <= parsed.snapshot.price <= 1


@FUZZ
@given(st.data())
def test_mutated_trades_events_series_raise_only_parse_errors(data: st.DataObject) -> None:
    for parse, payload in (
        (parse_trade, recorded_lines("kalshi/trades_items_2026.jsonl")[1]),
        (parse_event, recording("kalshi/event_single_2026-01-12.json")["event"]),
        (parse_series, recording("kalshi/series_single_2026-01-12.json")["series"]),
    ):
        with contextlib.suppress(ParseError):
            parse(mutate(payload, data))  # type: ignore[operator]


def test_markets_decoded_from_bytes_parse_as_the_recording_and_a_bad_one_is_skipped_alone() -> None:
    listed = recording("kalshi/markets_list_2026-01-12.json")
    markets = listed["markets"]
    broken = copy.deepcopy(markets[0]) | {"volume_24h_fp": "many"}
    body = orjson.dumps({"markets": [*markets, broken], "cursor": "next"})
    page = msgspec.json.decode(body, type=KalshiMarketsPage)
    assert page.cursor == "next"
    parsed, refused = [], []
    for raw in page.markets or []:
        try:
            parsed.append(parse_market(decode_market(raw), RECEIVED, None, "Other"))
        except ParseError as error:
            refused.append(str(error))
    assert refused == ["kalshi market: volume_24h_fp: invalid decimal string"]
    assert parsed == [parse_market(m, RECEIVED, None, "Other") for m in markets]
