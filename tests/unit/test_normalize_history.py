"""Price history from both venues (#20's sources), parsed from the recordings: Polymarket's
``prices-history`` points, Kalshi's candles in their three forms (current ``*_dollars``, January
2026 cents with ``null`` prices, the historical endpoint's unsuffixed strings)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import orjson
import pytest

from exporter.errors import ParseError
from exporter.normalize.kalshi import CandlesticksBatch, parse_candle
from exporter.normalize.polymarket import BatchPricesHistory, PricesHistory, parse_history_point
from tests.support.venues import FIXTURES, recorded_lines

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def test_an_empty_history_is_no_points() -> None:
    body = (FIXTURES / "polymarket" / "clob_prices_history_empty_2026-09.json").read_bytes()
    assert msgspec.json.decode(body, type=PricesHistory).history == []


def test_points_are_rows_at_their_own_time_with_the_displayed_price() -> None:
    body = orjson.dumps(
        {"history": {TOKEN: [{"t": 1790000000, "p": 0.42}, {"t": 1790000060, "p": "0.43"}]}}
    )
    batch = msgspec.json.decode(body, type=BatchPricesHistory)
    assert batch.history is not None
    rows = [parse_history_point(raw, TOKEN) for raw in batch.history[TOKEN]]
    assert [(r.time, r.price, r.bid, r.ask) for r in rows] == [
        (datetime.fromtimestamp(1790000000, UTC), 0.42, None, None),
        (datetime.fromtimestamp(1790000060, UTC), 0.43, None, None),
    ]
    assert rows[0].outcome_id == f"polymarket:{TOKEN}"


@pytest.mark.parametrize(
    ("point", "why"),
    [({"t": 1790000000}, "p is missing"), ({"t": 1790000000, "p": 1.5}, "outside 0..1"),
     ({"p": 0.5}, "t is missing"), ({"t": "soon", "p": 0.5}, "t: expected")],
)  # fmt: skip
def test_a_bad_point_names_its_field(point: dict[str, object], why: str) -> None:
    with pytest.raises(ParseError, match=why):
        parse_history_point(orjson.dumps(point), TOKEN)


def test_current_candles_give_the_quote_close_and_the_last_trade() -> None:
    traded, quiet, historical = recorded_lines("kalshi/candlestick_items_2026-09.jsonl")
    row = parse_candle(orjson.dumps(traded), "KXBTC15M-26SEP261845-45")
    assert row is not None
    assert row.time == datetime.fromtimestamp(1790462280, UTC)
    assert (row.bid, row.ask, row.last_trade) == (0.069, 0.07, 0.07)
    assert row.outcome_id == "kalshi:KXBTC15M-26SEP261845-45"
    # No trade in the period: the price keys are absent, the last trade is the previous price;
    # the empty quote sides (bid 0, ask 1) are no quote.
    row = parse_candle(orjson.dumps(quiet), "X")
    assert row is not None
    assert (row.bid, row.ask, row.last_trade, row.price) == (None, None, 0.001, 0.001)
    # The historical endpoint: unsuffixed keys, dollar strings.
    row = parse_candle(orjson.dumps(historical), "X")
    assert row is not None
    assert (row.bid, row.ask, row.last_trade) == (0.36, 0.37, 0.37)


def test_january_candles_in_cents_with_null_prices() -> None:
    body = (FIXTURES / "kalshi" / "markets_candlesticks_batch_2026-01-12.json").read_bytes()
    batch = msgspec.json.decode(body, type=CandlesticksBatch)
    assert batch.markets
    market = batch.markets[0]
    assert market.market_ticker
    assert market.candlesticks
    rows = [parse_candle(raw, market.market_ticker) for raw in market.candlesticks]
    first = rows[0]
    assert first is not None
    # price close null: the previous price (11 cents) is the last trade; the quote 8 / 11 cents.
    assert (first.bid, first.ask, first.last_trade) == (0.08, 0.11, 0.11)


def test_a_candle_without_its_end_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="end_period_ts is missing"):
        parse_candle(b'{"price": {}}', "X")
