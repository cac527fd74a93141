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
    market_id,
    outcome_id,
)
from exporter.normalize.polymarket import converted, decoded, from_unix, parse_time

VENUE = Venue.KALSHI
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
MARKET_URL = "https://kalshi.com/markets/{series}"


@dataclass(frozen=True, slots=True)
class EventInfo:
    ticker: str
    series: str | None
    title: str


@dataclass(frozen=True, slots=True)
class ParsedMarket:
    market: Market
    outcome: Outcome
    snapshot: Snapshot | None
    multivariate: bool


class KalshiMarket(msgspec.Struct, frozen=True):
    """The fields of a ``GET /markets`` entry this parser reads; the rest are skipped unread.
    Prices and counts decode straight into exact decimals (``*_dollars`` and ``*_fp`` strings,
    or the old integer fields)."""

    ticker: str | None = None
    event_ticker: str | None = None
    status: str | None = None
    yes_bid_dollars: Decimal | None = None
    yes_bid: Decimal | None = None
    yes_ask_dollars: Decimal | None = None
    yes_ask: Decimal | None = None
    last_price_dollars: Decimal | None = None
    last_price: Decimal | None = None
    yes_bid_size_fp: Decimal | None = None
    yes_bid_size: Decimal | None = None
    yes_ask_size_fp: Decimal | None = None
    yes_ask_size: Decimal | None = None
    volume_24h_fp: Decimal | None = None
    volume_24h: Decimal | None = None
    volume_fp: Decimal | None = None
    volume: Decimal | None = None
    open_interest_fp: Decimal | None = None
    open_interest: Decimal | None = None
    yes_sub_title: Any = None
    title: Any = None
    close_time: str | None = None
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


def _get(raw: dict[str, Any] | msgspec.Struct, key: str) -> Any:
    return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)


def decimal(raw: dict[str, Any] | msgspec.Struct, key: str, kind: str) -> Decimal | None:
    """An exact decimal from a string (or number); None when absent or null."""
    value = _get(raw, key)
    if value is None:
        return None
    if isinstance(value, Decimal):  # decoded so by the wire struct
        if not value.is_finite():
            raise _fail(kind, f"{key} is not finite: {value!r:.40}")
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(kind, f"{key} is not a decimal: {value!r:.40}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _fail(kind, f"{key} is not a decimal: {value!r:.40}") from None
    if not number.is_finite():
        raise _fail(kind, f"{key} is not finite: {value!r:.40}")
    return number


def dollars(
    raw: dict[str, Any] | msgspec.Struct, key: str, kind: str, *, required: bool = True
) -> float | None:
    """A price in dollars (= probability): ``key_dollars``, else the old cent integer ``key``."""
    value = decimal(raw, f"{key}_dollars", kind)
    if value is None:
        cents = decimal(raw, key, kind)
        value = None if cents is None else cents / 100
    if value is None:
        if required:
            raise _fail(kind, f"{key}_dollars is missing")
        return None
    if not 0 <= value <= 1:
        raise _fail(kind, f"{key}_dollars is outside 0..1: {value}")
    return float(value)


def count(
    raw: dict[str, Any] | msgspec.Struct, key: str, kind: str, *, required: bool = True
) -> float | None:
    """A contract count: ``key_fp`` (two decimals), else the old integer ``key``."""
    value = decimal(raw, f"{key}_fp", kind)
    if value is None:
        value = decimal(raw, key, kind)
    if value is None:
        if required:
            raise _fail(kind, f"{key}_fp is missing")
        return None
    if value < 0:
        raise _fail(kind, f"{key}_fp is negative: {value}")
    return float(value)


def top_of_book(
    raw: dict[str, Any] | msgspec.Struct, kind: str, last_key: str = "last_price"
) -> tuple[float | None, float | None, float | None]:
    """YES bid, ask and last trade of a market (REST) or ``ticker`` message (stream, whose last
    trade is ``price_dollars``)."""
    bid = dollars(raw, "yes_bid", kind)
    ask = dollars(raw, "yes_ask", kind)
    last = dollars(raw, last_key, kind)
    bid_size = count(raw, "yes_bid_size", kind, required=False)
    ask_size = count(raw, "yes_ask_size", kind, required=False)
    # A side with size 0 is no quote. Old payloads carry no sizes: an empty side shows bid 0 and
    # ask 0 or 1 there.
    if bid_size == 0 or (bid_size is None and bid == 0):
        bid = None
    if ask_size == 0 or (ask_size is None and ask in (0.0, 1.0)):
        ask = None
    if last == 0:
        last = None  # "0.0000" is what a market that never traded shows
    return bid, ask, last


def _text(raw: dict[str, Any] | msgspec.Struct, key: str, kind: str) -> str:
    value = _get(raw, key)
    if not isinstance(value, str) or not value:
        raise _fail(kind, f"{key} is missing")
    return value


def parse_series(raw: object) -> tuple[str, str | None]:
    """``(ticker, category)`` of a ``GET /series`` entry."""
    if not isinstance(raw, dict):
        raise _fail("series", f"not an object: {raw!r:.40}")
    category = raw.get("category")
    return _text(raw, "ticker", "series"), category if isinstance(category, str) else None


def parse_event(raw: object) -> EventInfo:
    """A ``GET /events`` entry: its title and series link."""
    if not isinstance(raw, dict):
        raise _fail("event", f"not an object: {raw!r:.40}")
    series = raw.get("series_ticker")
    title = raw.get("title")
    return EventInfo(
        _text(raw, "event_ticker", "event"),
        series if isinstance(series, str) and series else None,
        title if isinstance(title, str) else "",
    )


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
    ticker = _text(m, "ticker", kind)
    event_ticker = _text(m, "event_ticker", kind)
    status_name = _text(m, "status", kind)
    status = STATUS.get(status_name)
    if status is None:
        raise _fail(kind, f"unknown status {status_name!r:.30}")
    bid, ask, last = top_of_book(m, kind)
    volume_24h = count(m, "volume_24h", kind)
    volume = count(m, "volume", kind, required=False)
    open_interest = count(m, "open_interest", kind, required=False)
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
    mid = market_id(VENUE, ticker)
    market = Market(
        market_id=mid,
        venue=VENUE,
        native_id=ticker,
        title=title,
        status=status,
        observed_at=received_at,
        category=category,
        url=MARKET_URL.format(series=series.lower()) if series else None,
        event_id=event_ticker,
        event_title=event.title if event is not None else None,
        slug=None,
        end_time=parse_time(m.close_time, kind, "close_time", VENUE),
        volume_total=volume,
        volume_24h=volume_24h,
        liquidity=None,  # liquidity_dollars is deprecated and always "0.0000"
        open_interest=open_interest,
        tags=(series,) if series else (),
    )
    outcome = Outcome(
        outcome_id=outcome_id(VENUE, ticker),
        market_id=mid,
        venue=VENUE,
        native_id=ticker,
        name=sub_title if isinstance(sub_title, str) and sub_title else "Yes",
        position=0,
        observed_at=received_at,
    )
    price = displayed_price(bid, ask, last)
    snapshot = None
    if status is MarketStatus.OPEN and price is not None:
        snapshot = Snapshot(
            time=received_at,
            outcome_id=outcome.outcome_id,
            price=price,
            bid=bid,
            ask=ask,
            last_trade=last,
            volume_24h=volume_24h,
        )
    multivariate = bool(m.mve_collection_ticker)
    return ParsedMarket(market, outcome, snapshot, multivariate)


def parse_trade(raw: object) -> Trade:
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
    if not isinstance(raw, dict):
        raise _fail(kind, f"not an object: {raw!r:.40}")
    trade_id = _text(raw, "trade_id", kind)
    ticker = raw.get("ticker") or raw.get("market_ticker")
    if not isinstance(ticker, str) or not ticker:
        raise _fail(kind, "ticker is missing")
    price = dollars(raw, "yes_price", kind, required=False)
    if price is None and "price" in raw:  # Jan-2026 objects also carried a float `price`
        price = dollars({"p_dollars": raw["price"]}, "p", kind)
    if price is None:
        raise _fail(kind, "yes_price_dollars is missing")
    size = count(raw, "count", kind)
    assert size is not None
    when = parse_time(raw.get("created_time"), kind, "created_time", VENUE)
    if when is None:
        stamp = decimal(raw, "ts", kind)
        if stamp is None:
            raise _fail(kind, "created_time is missing")
        when = from_unix(float(stamp), kind, "ts", VENUE)
    book_side = raw.get("taker_book_side")
    outcome_side = raw.get("taker_outcome_side") or raw.get("taker_side")
    side = None
    if book_side in ("bid", "ask"):
        side = Side.BUY if book_side == "bid" else Side.SELL
    elif outcome_side in ("yes", "no"):
        side = Side.BUY if outcome_side == "yes" else Side.SELL
    return Trade(
        time=when,
        outcome_id=outcome_id(VENUE, ticker),
        venue=VENUE,
        trade_id=trade_id,
        price=price,
        size=size,
        side=side,
    )
