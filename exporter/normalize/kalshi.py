"""Kalshi payloads -> our records. Pure: payload + receive time in, records out.

Quirks handled (API_NOTES §2): prices as ``*_dollars`` decimal strings and counts as ``*_fp``
strings, parsed exactly with :class:`~decimal.Decimal`; pre-2026-03-12 payloads with integer cent
fields still parse (new names first, old names only when the new ones are absent); a required
field that is missing is a parse error, never a silent 0; a quote side with size 0 is no quote;
response status names (``active``, ``finalized`` …) differ from the filter names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from exporter.errors import ParseError
from exporter.model import (
    Market,
    MarketStatus,
    Outcome,
    Side,
    Snapshot,
    Trade,
    Venue,
    displayed_price,
)
from exporter.normalize.fields import (
    as_wire,
    converted,
    decoded,
    from_unix,
    listing_time,
    parse_time,
)

VENUE = Venue.KALSHI
PREFIX = f"{VENUE.value}:"
STATUS = {
    "initialized": MarketStatus.UPCOMING,
    "unopened": MarketStatus.UPCOMING,
    "active": MarketStatus.OPEN,
    "open": MarketStatus.OPEN,
    "inactive": MarketStatus.PAUSED,
    "paused": MarketStatus.PAUSED,
    "closed": MarketStatus.CLOSED,
    "determined": MarketStatus.CLOSED,
    "disputed": MarketStatus.CLOSED,
    "amended": MarketStatus.CLOSED,
    "finalized": MarketStatus.RESOLVED,
    "settled": MarketStatus.RESOLVED,
}
MARKET_URL = "https://kalshi.com/markets/"
"""Followed by the series ticker in lower case."""


@dataclass(frozen=True, slots=True)
class EventInfo:
    ticker: str
    series: str | None
    title: str


class ParsedMarket(msgspec.Struct, frozen=True, gc=False):
    market: Market
    outcome: Outcome
    snapshot: Snapshot | None
    multivariate: bool


class YesQuote(msgspec.Struct, frozen=True):
    """The YES side's best bid and ask with their sizes, as a market and a ``ticker`` message
    both carry them (``*_dollars``/``*_fp`` strings, or the old integer fields)."""

    yes_bid_dollars: Decimal | None = None
    yes_bid: Decimal | None = None
    yes_ask_dollars: Decimal | None = None
    yes_ask: Decimal | None = None
    yes_bid_size_fp: Decimal | None = None
    yes_bid_size: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None
    yes_ask_size: Decimal | None = None


def top_of_book(
    wire: YesQuote, last: Decimal | None, last_old: Decimal | None, last_key: str, kind: str
) -> tuple[float | None, float | None, float | None]:
    """YES bid, ask and last trade (``last_key``: the market's ``last_price``, a ``ticker``
    message's ``price``), the venue's placeholders taken out."""
    return quote(
        as_dollars(wire.yes_bid_dollars, wire.yes_bid, "yes_bid", kind),
        as_dollars(wire.yes_ask_dollars, wire.yes_ask, "yes_ask", kind),
        as_dollars(last, last_old, last_key, kind),
        as_count(wire.yes_bid_size_fp, wire.yes_bid_size, "yes_bid_size", kind, required=False),
        as_count(wire.yes_ask_size_fp, wire.yes_ask_size, "yes_ask_size", kind, required=False),
    )


class KalshiMarket(YesQuote, frozen=True):
    """The fields of a ``GET /markets`` entry this parser reads; the rest are skipped unread.
    Prices and counts decode straight into exact decimals (``*_dollars`` and ``*_fp`` strings,
    or the old integer fields)."""

    ticker: str | None = None
    event_ticker: str | None = None
    status: str | None = None
    last_price_dollars: Decimal | None = None
    last_price: Decimal | None = None
    volume_24h_fp: Decimal | None = None
    volume_24h: Decimal | None = None
    volume_fp: Decimal | None = None
    volume: Decimal | None = None
    open_interest_fp: Decimal | None = None
    open_interest: Decimal | None = None
    yes_sub_title: Any = None
    title: Any = None
    close_time: str | None = None
    created_time: str | None = None
    mve_collection_ticker: Any = None


class KalshiMarketsPage(msgspec.Struct, frozen=True):
    """One ``GET /markets`` page: each market's bytes, decoded one by one."""

    markets: list[msgspec.Raw] | None = None
    cursor: str | None = None


_MARKET = msgspec.json.Decoder(KalshiMarket)


def decode_market(raw: bytes | msgspec.Raw) -> KalshiMarket:
    result: KalshiMarket = decoded(_MARKET, raw, "market", VENUE)
    return result


def _fail(kind: str, message: str) -> ParseError:
    return ParseError(VENUE.value, kind, message)


def _finite(value: Decimal, key: str, kind: str) -> Decimal:
    if not value.is_finite():  # msgspec decodes "NaN" and "Infinity" too
        raise _fail(kind, f"{key} is not finite: {value!r:.40}")
    return value


def as_dollars(
    new: Decimal | None, cents: Decimal | None, key: str, kind: str, *, required: bool = True
) -> float | None:
    """A price in dollars (= probability): ``key_dollars`` (``new``), else the old cent integer
    ``key`` (``cents``), both already decimals."""
    if new is not None:
        value = new if new.is_finite() else _finite(new, f"{key}_dollars", kind)
    elif cents is not None:
        value = _finite(cents, key, kind) / 100
    elif required:
        raise _fail(kind, f"{key}_dollars is missing")
    else:
        return None
    if not 0 <= value <= 1:
        raise _fail(kind, f"{key}_dollars is outside 0..1: {value}")
    return float(value)


def as_count(
    new: Decimal | None, old: Decimal | None, key: str, kind: str, *, required: bool = True
) -> float | None:
    """A contract count: ``key_fp`` (``new``, two decimals), else the old integer ``key``."""
    if new is not None:
        value = new if new.is_finite() else _finite(new, f"{key}_fp", kind)
    elif old is not None:
        value = _finite(old, key, kind)
    elif required:
        raise _fail(kind, f"{key}_fp is missing")
    else:
        return None
    if value < 0:
        raise _fail(kind, f"{key}_fp is negative: {value}")
    return float(value)


def quote(
    bid: float | None,
    ask: float | None,
    last: float | None,
    bid_size: float | None,
    ask_size: float | None,
) -> tuple[float | None, float | None, float | None]:
    """YES bid, ask and last trade with the venue's placeholders taken out."""
    # A side with size 0 is no quote. Old payloads carry no sizes: an empty side shows bid 0 and
    # ask 0 or 1 there.
    if bid_size == 0 or (bid_size is None and bid == 0):
        bid = None
    if ask_size == 0 or (ask_size is None and ask in (0.0, 1.0)):
        ask = None
    if last == 0:
        last = None  # "0.0000" is what a market that never traded shows
    return bid, ask, last


def _required_text(value: object, key: str, kind: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(kind, f"{key} is missing")
    return value


class KalshiSeries(msgspec.Struct, frozen=True, gc=False):
    ticker: str | None = None
    category: Any = None
    """Kept as sent: a series without a usable category is "Other", not a parse error."""


class KalshiSeriesList(msgspec.Struct, frozen=True):
    """``GET /series``: not paginated; each series decoded one by one."""

    series: list[msgspec.Raw] | None = None


class KalshiEvent(msgspec.Struct, frozen=True, gc=False):
    event_ticker: str | None = None
    series_ticker: Any = None
    title: Any = None


class KalshiEventsPage(msgspec.Struct, frozen=True):
    """One ``GET /events`` page: each event's bytes, decoded one by one."""

    events: list[msgspec.Raw] | None = None
    cursor: str | None = None


_SERIES = msgspec.json.Decoder(KalshiSeries)
_EVENT = msgspec.json.Decoder(KalshiEvent)


def parse_series(
    raw: KalshiSeries | msgspec.Raw | bytes | dict[str, Any],
) -> tuple[str, str | None]:
    """``(ticker, category)`` of a ``GET /series`` entry."""
    series = _wire(raw, KalshiSeries, _SERIES, "series")
    category = series.category
    ticker = _required_text(series.ticker, "ticker", "series")
    return ticker, category if isinstance(category, str) else None


def parse_event(raw: KalshiEvent | msgspec.Raw | bytes | dict[str, Any]) -> EventInfo:
    """A ``GET /events`` entry: its title and series link."""
    event = _wire(raw, KalshiEvent, _EVENT, "event")
    series, title = event.series_ticker, event.title
    return EventInfo(
        _required_text(event.event_ticker, "event_ticker", "event"),
        series if isinstance(series, str) and series else None,
        title if isinstance(title, str) else "",
    )


def _wire(raw: Any, wire: type[Any], decoder: msgspec.json.Decoder[Any], kind: str) -> Any:
    return as_wire(raw, wire, decoder, kind, VENUE)


def parse_market(
    raw: object,
    received_at: datetime,
    event: EventInfo | None,
    category: str,
) -> ParsedMarket:
    """A ``GET /markets`` entry: the market, its YES outcome and (when trading) a snapshot.

    Trimmed real payload (markets_list_2026-01-12.json, the transitional superset)::

        {"ticker": "KXMVENFLSINGLEGAME-S2025…", "event_ticker": "KXMVENFLSINGLEGAME-S2025…",
         "status": "active", "yes_bid": 0, "yes_bid_dollars": "0.0000", "yes_ask_dollars": "0.0000",
         "last_price_dollars": "0.0000", "volume": 0, "close_time": "2026-01-27T01:15:00Z",
         "yes_sub_title": "yes Pittsburgh,…", "mve_collection_ticker": "KXMVENFLSINGLEGAME-…"}

    The title a person understands is the event title plus the market's yes sub-title.
    """
    kind = "market"
    m: KalshiMarket = converted(raw, KalshiMarket, kind, VENUE)
    ticker = _required_text(m.ticker, "ticker", kind)
    event_ticker = _required_text(m.event_ticker, "event_ticker", kind)
    status_name = _required_text(m.status, "status", kind)
    status = STATUS.get(status_name)
    if status is None:
        raise _fail(kind, f"unknown status {status_name!r:.30}")
    bid, ask, last = top_of_book(m, m.last_price_dollars, m.last_price, "last_price", kind)
    volume_24h = as_count(m.volume_24h_fp, m.volume_24h, "volume_24h", kind)
    volume = as_count(m.volume_fp, m.volume, "volume", kind, required=False)
    open_interest = as_count(
        m.open_interest_fp, m.open_interest, "open_interest", kind, required=False
    )
    sub_title = m.yes_sub_title
    own_title = m.title if isinstance(m.title, str) else ""
    if event is not None and event.title:
        title = (
            f"{event.title} — {sub_title}"
            if isinstance(sub_title, str) and sub_title
            else event.title
        )
    else:
        title = own_title or ticker
    series = event.series if event is not None else None
    mid = PREFIX + ticker
    market = Market(
        market_id=mid,
        venue=VENUE,
        native_id=ticker,
        title=title,
        status=status,
        observed_at=received_at,
        category=category,
        url=MARKET_URL + series.lower() if series else None,
        event_id=event_ticker,
        event_title=event.title if event is not None else None,
        slug=None,
        end_time=parse_time(m.close_time, kind, "close_time", VENUE),
        volume_total=volume,
        volume_24h=volume_24h,
        liquidity=None,  # liquidity_dollars is deprecated and always "0.0000"
        open_interest=open_interest,
        tags=(series,) if series else (),
        listed_at=listing_time(m.created_time),
    )
    # Positional (a sweep builds some 150,000 of each): a Kalshi market's one outcome, YES,
    # shares its id; then time, outcome_id, price, bid, ask, last_trade, volume_24h.
    name = sub_title if isinstance(sub_title, str) and sub_title else "Yes"
    outcome = Outcome(mid, mid, VENUE, ticker, name, 0, received_at)
    price = displayed_price(bid, ask, last)
    snapshot = None
    if status is MarketStatus.OPEN and price is not None:
        snapshot = Snapshot(received_at, mid, price, bid, ask, last, volume_24h)
    multivariate = bool(m.mve_collection_ticker)
    return ParsedMarket(market, outcome, snapshot, multivariate)


class KalshiTrade(msgspec.Struct, frozen=True, gc=False):
    """A trade of the REST tape or a websocket ``trade`` message; prices and counts exact."""

    trade_id: str | None = None
    ticker: str | None = None
    market_ticker: str | None = None
    yes_price_dollars: Decimal | None = None
    yes_price: Decimal | None = None
    price: Decimal | None = None
    """Dollars, a float, in the January 2026 objects."""
    count_fp: Decimal | None = None
    count: Decimal | None = None
    created_time: str | None = None
    ts: Decimal | None = None
    taker_book_side: str | None = None
    taker_outcome_side: str | None = None
    taker_side: str | None = None


class KalshiTradesPage(msgspec.Struct, frozen=True):
    """One ``GET /markets/trades`` page: each trade's bytes, decoded one by one."""

    trades: list[msgspec.Raw] | None = None
    cursor: str | None = None


_TRADE = msgspec.json.Decoder(KalshiTrade)


def decode_trade(raw: KalshiTrade | msgspec.Raw | bytes | dict[str, Any]) -> KalshiTrade:
    """A trade from its bytes (a page, a frame) or an already-decoded object."""
    trade: KalshiTrade = _wire(raw, KalshiTrade, _TRADE, "trade")
    return trade


def parse_trade(raw: KalshiTrade | msgspec.Raw | bytes | dict[str, Any]) -> Trade:
    """A ``GET /markets/trades`` entry (or a websocket trade's ``msg``).

    Trimmed real payload (trades_items_2026.jsonl)::

        {"trade_id": "e511db2f-…", "ticker": "KXBTCD-26MAY3017-T73499.99", "count_fp": "4.68",
         "yes_price_dollars": "0.4100", "no_price_dollars": "0.5900", "taker_outcome_side": "yes",
         "taker_side": "yes", "taker_book_side": "bid",
         "created_time": "2026-05-30T00:05:19.147391Z"}

    Side is the taker's, on YES: ``taker_book_side`` bid (bought YES) / ask (sold YES), else the
    outcome side.
    """
    kind = "trade"
    wire = decode_trade(raw)
    trade_id = _required_text(wire.trade_id, "trade_id", kind)
    ticker = _required_text(wire.ticker or wire.market_ticker, "ticker", kind)
    price = as_dollars(wire.yes_price_dollars, wire.yes_price, "yes_price", kind, required=False)
    if price is None and wire.price is not None:  # Jan-2026 objects also carried a float `price`
        price = as_dollars(wire.price, None, "price", kind)
    if price is None:
        raise _fail(kind, "yes_price_dollars is missing")
    size = as_count(wire.count_fp, wire.count, "count", kind)
    assert size is not None
    when = parse_time(wire.created_time, kind, "created_time", VENUE)
    if when is None:
        if wire.ts is None:
            raise _fail(kind, "created_time is missing")
        when = from_unix(float(_finite(wire.ts, "ts", kind)), kind, "ts", VENUE)
    book_side = wire.taker_book_side
    outcome_side = wire.taker_outcome_side or wire.taker_side
    side = None
    if book_side in ("bid", "ask"):
        side = Side.BUY if book_side == "bid" else Side.SELL
    elif outcome_side in ("yes", "no"):
        side = Side.BUY if outcome_side == "yes" else Side.SELL
    return Trade(
        time=when,
        outcome_id=PREFIX + ticker,
        venue=VENUE,
        trade_id=trade_id,
        price=price,
        size=size,
        side=side,
    )


# --- history ------------------------------------------------------------------------------------


class CandleSide(msgspec.Struct, frozen=True, gc=False):
    """One OHLC group of a candle (``price``, ``yes_bid``, ``yes_ask``) in any of its forms:
    ``close_dollars`` strings (current), old cent integers beside them (January 2026, ``null``
    where nothing traded), or the historical endpoint's unsuffixed dollar strings."""

    close_dollars: Decimal | None = None
    close: str | int | float | None = None
    previous_dollars: Decimal | None = None
    previous: str | int | float | None = None


class Candle(msgspec.Struct, frozen=True, gc=False):
    """A candlestick (API_NOTES 2.6): its inclusive end, the traded price and the quote."""

    end_period_ts: int | None = None
    price: CandleSide | None = None
    yes_bid: CandleSide | None = None
    yes_ask: CandleSide | None = None


class Candlesticks(msgspec.Struct, frozen=True):
    """One market's candles (``/series/…/markets/…/candlesticks``, its historical twin)."""

    candlesticks: list[msgspec.Raw] | None = None


class MarketCandles(msgspec.Struct, frozen=True):
    market_ticker: str | None = None
    candlesticks: list[msgspec.Raw] | None = None


class CandlesticksBatch(msgspec.Struct, frozen=True):
    """``GET /markets/candlesticks``: candles per market ticker."""

    markets: list[MarketCandles] | None = None


class HistoricalCutoff(msgspec.Struct, frozen=True):
    """``GET /historical/cutoff``: markets settled before ``market_settled_ts`` are served
    under ``/historical`` only."""

    market_settled_ts: str | None = None
    trades_created_ts: str | None = None


def settled_cutoff(cutoff: HistoricalCutoff) -> datetime | None:
    return parse_time(cutoff.market_settled_ts, "cutoff", "market_settled_ts", VENUE)


_CANDLE = msgspec.json.Decoder(Candle)


def _candle_value(side: CandleSide | None, key: str, kind: str) -> float | None:
    """A side's close (``key`` "close") or previous price in dollars, whatever the form."""
    if side is None:
        return None
    new = getattr(side, f"{key}_dollars")
    if new is not None:
        return as_dollars(new, None, key, kind)
    old = getattr(side, key)
    if old is None:
        return None
    if isinstance(old, str):  # the historical endpoint: unsuffixed dollar strings
        try:
            return as_dollars(Decimal(old), None, key, kind)
        except InvalidOperation:
            raise _fail(kind, f"{key} is not a decimal: {old!r:.30}") from None
    return as_dollars(None, Decimal(str(old)), key, kind)  # January 2026: cents


def parse_candle(
    raw: Candle | msgspec.Raw | bytes | dict[str, Any], ticker: str
) -> Snapshot | None:
    """A candle of ``ticker`` as a price row at its period's end: bid and ask from the quote's
    close (an empty side's 0 / 1 placeholders are no quote), the last trade from the traded
    close, else the price before the period (a candle without trades). None when nothing can
    be shown."""
    kind = "candle"
    candle: Candle = _wire(raw, Candle, _CANDLE, kind)
    if candle.end_period_ts is None:
        raise _fail(kind, "end_period_ts is missing")
    when = from_unix(candle.end_period_ts, kind, "end_period_ts", VENUE)
    last = _candle_value(candle.price, "close", kind)
    if last is None:
        last = _candle_value(candle.price, "previous", kind)
    bid, ask, last = quote(
        _candle_value(candle.yes_bid, "close", kind),
        _candle_value(candle.yes_ask, "close", kind),
        last,
        None,
        None,
    )
    price = displayed_price(bid, ask, last)
    if price is None:
        return None
    return Snapshot(
        time=when, outcome_id=PREFIX + ticker, price=price, bid=bid, ask=ask, last_trade=last
    )
