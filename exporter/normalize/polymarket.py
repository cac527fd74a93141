"""Polymarket payloads -> our records. Pure: payload + receive time in, records out.

Quirks handled (API_NOTES §1): JSON-encoded string fields (``outcomes``, ``outcomePrices``,
``clobTokenIds``) or the newer real-array ``positionIds``; numbers that arrive as strings or ints;
optional fields that are absent (absent is not 0); the non-ISO ``closedTime``; books whose best
levels are the *last* elements (sorted defensively); ``{"mid": …}`` vs ``{"mid_price": …}``;
token ids kept as strings. A malformed record raises :class:`ParseError` naming the field.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import orjson

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
    is_probability,
)
from exporter.normalize.fields import (
    as_wire,
    converted,
    decoded,
    from_unix,
    listing_time,
    parse_time,
)

VENUE = Venue.POLYMARKET
PREFIX = f"{VENUE.value}:"
"""Of our market and outcome ids: ``model.market_id``/``outcome_id`` without the enum lookup."""
MARKET_URL = "https://polymarket.com/event/"
"""Followed by the event's slug (else the market's)."""


class ParsedMarket(msgspec.Struct, frozen=True, gc=False):
    """One Gamma market: its record, its outcomes and (when trading) a snapshot per outcome."""

    market: Market
    outcomes: list[Outcome]
    snapshots: list[Snapshot]
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EventContext:
    """What a market takes from its event."""

    event_id: str | None
    title: str | None
    slug: str | None
    category: str
    tags: tuple[str, ...]


# --- wire schemas (Gamma's field names; decoded straight from the response bytes) ---------------


class GammaMarket(msgspec.Struct, frozen=True):
    """The fields of a Gamma market this parser reads (of some eighty); the rest are skipped
    unread. Numbers may arrive as numbers or numeric strings, list fields as JSON text or arrays;
    the flags are compared with ``is True``/``is False`` (anything else is neither)."""

    conditionId: str | None = None
    question: str | None = None
    slug: str | None = None
    endDate: str | None = None
    createdAt: str | None = None
    outcomes: str | list[Any] | None = None
    outcomePrices: str | list[Any] | None = None
    clobTokenIds: str | list[Any] | None = None
    positionIds: str | list[Any] | None = None
    closed: Any = None
    archived: Any = None
    active: Any = None
    volume24hr: float | str | None = None
    liquidity: float | str | None = None
    liquidityNum: float | str | None = None
    volume: float | str | None = None
    volumeNum: float | str | None = None
    bestBid: float | str | None = None
    bestAsk: float | str | None = None
    lastTradePrice: float | str | None = None


class GammaEvent(msgspec.Struct, frozen=True):
    """An event of ``/events/keyset``: what its markets inherit, and each market's own bytes (a
    malformed market is skipped alone)."""

    id: Any = None
    title: Any = None
    slug: Any = None
    tags: Any = None
    markets: list[msgspec.Raw] | None = None
    endDate: Any = None
    """Only whether there is one is read: Gamma's ``end_date_min/max`` filter on it."""


class GammaEventsPage(msgspec.Struct, frozen=True):
    """One ``/events/keyset`` page: each event's bytes, decoded one by one."""

    events: list[msgspec.Raw]
    next_cursor: str | None = None


_EVENT = msgspec.json.Decoder(GammaEvent)
_MARKET = msgspec.json.Decoder(GammaMarket)


def decode_event(raw: bytes | msgspec.Raw) -> GammaEvent:
    result: GammaEvent = decoded(_EVENT, raw, "event", VENUE)
    return result


def decode_market(raw: bytes | msgspec.Raw) -> GammaMarket:
    result: GammaMarket = decoded(_MARKET, raw, "market", VENUE)
    return result


# --- field helpers ------------------------------------------------------------------------------


def _fail(kind: str, message: str) -> ParseError:
    return ParseError(VENUE.value, kind, message)


def number(raw: dict[str, Any], key: str, kind: str) -> float:
    """A required finite number that may arrive as a number or a numeric string."""
    value = optional_number(raw, key, kind)
    if value is None:
        raise _fail(kind, f"{key} is missing")
    return value


def optional_number(raw: dict[str, Any], key: str, kind: str) -> float | None:
    """A finite number, or None when the key is absent, null or an empty string."""
    return as_number(raw.get(key), key, kind)


def as_number(value: object, key: str, kind: str) -> float | None:
    """``value`` (of field ``key``) as a finite number; None when null or an empty string."""
    if type(value) is float and value - value == 0:  # the common case: finite (not inf or NaN)
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(kind, f"{key} is not a number: {value!r:.40}")
    try:
        result = float(value)
    except ValueError:
        raise _fail(kind, f"{key} is not a number: {value!r:.40}") from None
    if not math.isfinite(result):
        raise _fail(kind, f"{key} is not finite: {value!r:.40}")
    return result


def _probability(raw: dict[str, Any], key: str, kind: str) -> float | None:
    return _as_probability(raw.get(key), key, kind)


def _as_probability(value: object, key: str, kind: str) -> float | None:
    number = as_number(value, key, kind)
    if number is not None and not is_probability(number):
        raise _fail(kind, f"{key} is outside 0..1: {number}")
    return number


def _text(raw: dict[str, Any], key: str, kind: str, *, required: bool = True) -> str | None:
    return _as_text(raw.get(key), key, kind, required=required)


def _as_text(value: object, key: str, kind: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise _fail(kind, f"{key} is missing")
        return None
    if not isinstance(value, str):
        raise _fail(kind, f"{key} is not a string: {value!r:.40}")
    return value


_STRINGS = msgspec.json.Decoder(list[str])


def _string_list(value: object, key: str, kind: str) -> list[str] | None:
    """A list of strings sent either as a real array or as JSON text of one."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:  # the common case: JSON text of strings only, checked in C
            return _STRINGS.decode(value)
        except msgspec.DecodeError:
            pass
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise _fail(kind, f"{key} is not valid JSON: {value!r:.60}") from None
    if not isinstance(value, list) or not all(isinstance(v, str | int | float) for v in value):
        raise _fail(kind, f"{key} is not a list of strings: {value!r:.60}")
    if any(isinstance(v, bool) for v in value):
        raise _fail(kind, f"{key} is not a list of strings: {value!r:.60}")
    return [v if isinstance(v, str) else repr(v) for v in value]


def event_context(
    raw: GammaEvent | dict[str, Any], categorize: Callable[[list[tuple[str, str]]], str]
) -> EventContext:
    """The event fields its markets inherit; ``categorize`` maps ``(slug, label)`` tags."""
    if isinstance(raw, dict):  # already decoded: its markets are not this function's
        raw = GammaEvent(raw.get("id"), raw.get("title"), raw.get("slug"), raw.get("tags"))
    event = raw
    tags: list[tuple[str, str]] = []
    raw_tags = event.tags
    for tag in raw_tags if isinstance(raw_tags, list) else []:
        if isinstance(tag, dict):
            slug, label = tag.get("slug"), tag.get("label")
            tags.append(
                (slug if isinstance(slug, str) else "", label if isinstance(label, str) else "")
            )
    event_id = event.id
    return EventContext(
        event_id=str(event_id) if isinstance(event_id, str | int) else None,
        title=event.title if isinstance(event.title, str) else None,
        slug=event.slug if isinstance(event.slug, str) else None,
        category=categorize(tags),
        tags=tuple(slug or label for slug, label in tags),
    )


def parse_market(raw: object, received_at: datetime, event: EventContext) -> ParsedMarket:
    """A Gamma market (from ``/markets`` or nested in an event), as :class:`GammaMarket` (from
    :func:`decode_market`) or already decoded.

    Trimmed real payload (gamma_market_live_2026-06.json)::

        {"id": "559653", "question": "Will Gavin Newsom win the 2028 Democratic …?",
         "conditionId": "0x0f49…", "slug": "will-gavin-newsom-…", "endDate": "2028-11-07T00:00:00Z",
         "liquidity": "617528.40849", "outcomes": "[\\"Yes\\", \\"No\\"]",
         "outcomePrices": "[\\"0.2325\\", \\"0.7675\\"]", "volume": "49201093.48",
         "active": true, "closed": false, "clobTokenIds": "[\\"1010…\\", \\"4165…\\"]",
         "volume24hr": 160539.84, "bestBid": 0.232, "bestAsk": 0.233, "lastTradePrice": 0.233}
    """
    kind = "market"
    m: GammaMarket = converted(raw, GammaMarket, kind, VENUE)
    condition = _as_text(m.conditionId, "conditionId", kind)
    assert condition is not None
    title = _as_text(m.question, "question", kind) or ""
    names = _string_list(m.outcomes, "outcomes", kind) or []
    tokens = _string_list(m.positionIds, "positionIds", kind) or _string_list(
        m.clobTokenIds, "clobTokenIds", kind
    )
    if not tokens:
        raise _fail(kind, "neither clobTokenIds nor positionIds is present")
    if not all(map(str.isdigit, tokens)):
        raise _fail(kind, f"token ids are not decimal strings: {tokens!r:.60}")
    prices = _string_list(m.outcomePrices, "outcomePrices", kind)
    shown = [_price_text(p, kind) for p in prices] if prices else []
    if names and len(names) != len(tokens):
        raise _fail(kind, f"{len(names)} outcomes but {len(tokens)} token ids")
    closed = m.closed is True
    if m.archived is True:
        status = MarketStatus.DELISTED
    elif closed:
        status = MarketStatus.RESOLVED if shown and max(shown) == 1.0 else MarketStatus.CLOSED
    elif m.active is False:
        status = MarketStatus.PAUSED
    else:
        status = MarketStatus.OPEN
    slug = _as_text(m.slug, "slug", kind, required=False)
    volume_24h = as_number(m.volume24hr, "volume24hr", kind)
    liquidity = as_number(m.liquidityNum, "liquidityNum", kind)
    if liquidity is None:
        liquidity = as_number(m.liquidity, "liquidity", kind)
    volume_total = as_number(m.volumeNum, "volumeNum", kind)
    if volume_total is None:
        volume_total = as_number(m.volume, "volume", kind)
    mid = PREFIX + condition
    page = event.slug or slug
    market = Market(
        market_id=mid,
        venue=VENUE,
        native_id=condition,
        title=title,
        status=status,
        observed_at=received_at,
        category=event.category,
        url=MARKET_URL + page if page else None,
        event_id=event.event_id,
        event_title=event.title,
        slug=slug,
        end_time=parse_time(m.endDate, kind, "endDate", VENUE),
        volume_total=volume_total,
        volume_24h=volume_24h,
        liquidity=liquidity,
        tags=event.tags,
        listed_at=listing_time(m.createdAt),
    )
    # Positional (outcome_id, market_id, venue, native_id, name, position, observed_at): a
    # sweep builds some 60,000 of these.
    outcomes = [
        Outcome(
            PREFIX + token, mid, VENUE, token,
            names[i] if i < len(names) else f"Outcome {i + 1}", i, received_at,
        )
        for i, token in enumerate(tokens)
    ]  # fmt: skip
    snapshots = (
        _gamma_snapshots(m, tokens, shown, received_at, volume_24h, liquidity)
        if status is MarketStatus.OPEN
        else []
    )
    return ParsedMarket(market, outcomes, snapshots, tuple(tokens))


def _price_text(value: str, kind: str) -> float:
    try:
        price = float(value)
    except ValueError:
        raise _fail(kind, f"outcomePrices holds {value!r:.20}") from None
    if not is_probability(price):
        raise _fail(kind, f"outcomePrices holds {value!r:.20}")
    return price


def _gamma_snapshots(
    m: GammaMarket,
    tokens: list[str],
    shown: list[float],
    received_at: datetime,
    volume_24h: float | None,
    liquidity: float | None,
) -> list[Snapshot]:
    """Gamma's quote fields are the first outcome's; a binary market's second outcome mirrors
    them (a NO bid at 1 - p is a YES ask at p). Without a quote on either side, the price is the
    last trade, else the displayed ``outcomePrices``."""
    kind = "market"
    bid = _as_probability(m.bestBid, "bestBid", kind)
    ask = _as_probability(m.bestAsk, "bestAsk", kind)
    last = _as_probability(m.lastTradePrice, "lastTradePrice", kind)
    # Gamma renders an empty book side as bestBid 0 / bestAsk 1 (API_NOTES §1.2): those are not
    # quotes (nobody bids 0 or asks 1), so the side is unknown and no price comes from it.
    if bid is not None and bid <= 0:
        bid = None
    if ask is not None and ask >= 1:
        ask = None
    quotes: list[tuple[float | None, float | None, float | None]] = [(bid, ask, last)]
    if len(tokens) == 2:
        quotes.append(
            (
                None if ask is None else round(1 - ask, 6),
                None if bid is None else round(1 - bid, 6),
                None if last is None else round(1 - last, 6),
            )
        )
    snapshots = []
    for i, token in enumerate(tokens):
        b, a, lt = quotes[i] if i < len(quotes) else (None, None, None)
        price = displayed_price(b, a, lt)
        if price is None and i < len(shown):
            price = shown[i]
        if price is None:
            continue
        # Positional: time, outcome_id, price, bid, ask, last_trade, volume_24h, liquidity.
        snapshots.append(
            Snapshot(received_at, PREFIX + token, price, b, a, lt, volume_24h, liquidity)
        )
    return snapshots


# --- CLOB ---------------------------------------------------------------------------------------


class Level(msgspec.Struct, frozen=True, gc=False):
    """One price level of a book: decimal strings (a number is read the same way)."""

    price: str | float | None = None
    size: str | float | None = None


class ClobBook(msgspec.Struct, frozen=True, gc=False):
    """A CLOB book as REST serves it (``POST /books``); the fields this parser reads."""

    asset_id: str | None = None
    bids: list[Level] | None = None
    asks: list[Level] | None = None
    last_trade_price: str | float | None = None
    timestamp: str | float | None = None


_BOOK = msgspec.json.Decoder(ClobBook)


def decode_book(raw: ClobBook | msgspec.Raw | bytes | dict[str, Any]) -> ClobBook:
    """A book from its bytes (an element of a ``POST /books`` answer) or a decoded object."""
    book: ClobBook = as_wire(raw, ClobBook, _BOOK, "book", VENUE)
    return book


def parse_book(
    raw: ClobBook | msgspec.Raw | bytes | dict[str, Any], received_at: datetime
) -> Snapshot | None:
    """A CLOB book (``GET /book``, an element of ``POST /books``).

    Trimmed real payload (clob_book_empty_ask_2026-08-03.json)::

        {"market": "0x9d83…", "asset_id": "7261…3692", "timestamp": "1785734468581",
         "bids": [{"price": "0.001", "size": "667.12"}, {"price": "0.002", "size": "6.99"}],
         "asks": [], "tick_size": "0.001", "last_trade_price": ""}

    The best bid is the *highest* bid wherever it sits (the venue sends it last). None when
    no price can be displayed (a side is missing and nothing has traded yet).
    """
    kind = "book"
    book = decode_book(raw)
    token = _as_text(book.asset_id, "asset_id", kind)
    assert token is not None
    if not token.isdigit():
        raise _fail(kind, f"asset_id is not a decimal string: {token!r:.40}")
    bids = _levels(book.bids, "bids")
    asks = _levels(book.asks, "asks")
    bid = max(bids) if bids else None
    ask = min(asks) if asks else None
    last = _as_probability(book.last_trade_price, "last_trade_price", kind)
    price = displayed_price(bid, ask, last)
    if price is None:
        return None
    stamp = as_number(book.timestamp, "timestamp", kind)
    if stamp is not None:
        from_unix(stamp / 1000, kind, "timestamp", VENUE)  # validated, not used: see below
    # Snapshots are stamped with our receive time, whatever the source: Gamma has no quote
    # time, and mixing venue and local clocks could order an outcome's rows backwards.
    return Snapshot(
        time=received_at,
        outcome_id=PREFIX + token,
        price=price,
        bid=bid,
        ask=ask,
        last_trade=last,
    )


def _levels(levels: list[Level] | None, key: str) -> list[float]:
    prices = []
    for level in levels or ():
        price = _as_probability(level.price, "price", "book")
        if price is None:
            raise _fail("book", f"{key} level without a price")
        prices.append(price)
    return prices


def parse_midpoint(raw: object) -> float:
    """``{"mid": "0.65"}`` as observed live, or ``{"mid_price": "0.45"}`` as documented."""
    if not isinstance(raw, dict):
        raise _fail("midpoint", f"not an object: {raw!r:.40}")
    key = "mid" if "mid" in raw else "mid_price"
    value = _probability(raw, key, "midpoint")
    if value is None:
        raise _fail("midpoint", "neither mid nor mid_price is present")
    return value


# --- Data API -----------------------------------------------------------------------------------


class DataTrade(msgspec.Struct, frozen=True, gc=False):
    """A Data API trade (``GET /trades``, and RTDS's trade payload), in the camelCase rows and
    the v2 Data API's snake_case ones (API_NOTES 1.6). Size, price and side keep the type they
    came in: a trade's id digests them as sent."""

    transactionHash: str | None = None
    transaction_hash: str | None = None
    asset: str | None = None
    token_id: str | None = None
    proxyWallet: Any = None
    proxy_wallet: Any = None
    side: Any = None
    size: Any = None
    price: Any = None
    timestamp: Any = None


_TRADE = msgspec.json.Decoder(DataTrade)


def decode_trade(raw: DataTrade | msgspec.Raw | bytes | dict[str, Any]) -> DataTrade:
    """A trade from its bytes (a Data API page, an RTDS frame) or a decoded object."""
    trade: DataTrade = as_wire(raw, DataTrade, _TRADE, "trade", VENUE)
    return trade


def parse_trade(raw: DataTrade | msgspec.Raw | bytes | dict[str, Any]) -> Trade:
    """A Data API trade (``GET /trades``); one transaction can carry several fills.

    Trimmed real payload (data_api_trades_2026-07.json)::

        {"proxyWallet": "0x0f34…", "side": "BUY", "asset": "1104…5775", "conditionId": "0xc594…",
         "size": 15, "price": 0.765, "timestamp": 1783008527, "outcomeIndex": 0,
         "transactionHash": "0x57e9…d505"}

    The trade id is the transaction hash plus a digest of what tells its fills apart (asset,
    wallet, side, size, price as sent): stable however pages are cut, unique per fill.
    """
    kind = "trade"
    wire = decode_trade(raw)
    tx = _as_text(wire.transactionHash or wire.transaction_hash, "transactionHash", kind)
    asset = _as_text(wire.asset or wire.token_id, "asset", kind)
    assert tx is not None
    assert asset is not None
    if not asset.isdigit():
        raise _fail(kind, f"asset is not a decimal string: {asset!r:.40}")
    price = _as_probability(wire.price, "price", kind)
    if price is None:
        raise _fail(kind, "price is missing")
    size = as_number(wire.size, "size", kind)
    if size is None:
        raise _fail(kind, "size is missing")
    if size < 0:
        raise _fail(kind, f"size is negative: {size}")
    stamp = as_number(wire.timestamp, "timestamp", kind)
    if stamp is None:
        raise _fail(kind, "timestamp is missing")
    side_text = wire.side
    side = (
        {"BUY": Side.BUY, "SELL": Side.SELL}.get(side_text) if isinstance(side_text, str) else None
    )
    given = wire.proxyWallet if wire.proxyWallet is not None else wire.proxy_wallet
    wallet = given if isinstance(given, str) else None
    fill = f"{asset}|{wallet}|{side_text}|{wire.size}|{wire.price}"
    digest = hashlib.blake2b(fill.encode(), digest_size=6).hexdigest()
    return Trade(
        time=from_unix(stamp, kind, "timestamp", VENUE),
        outcome_id=PREFIX + asset,
        venue=VENUE,
        trade_id=f"{tx}:{digest}",
        price=price,
        size=size,
        side=side,
        trader=wallet,
    )


# --- history ------------------------------------------------------------------------------------


class HistoryPoint(msgspec.Struct, frozen=True, gc=False):
    """A ``prices-history`` point: unix seconds and the displayed price."""

    t: int | float | None = None
    p: int | float | str | None = None


class PricesHistory(msgspec.Struct, frozen=True):
    """``GET /prices-history``: one token's points, each decoded alone."""

    history: list[msgspec.Raw] | None = None


class BatchPricesHistory(msgspec.Struct, frozen=True):
    """``POST /batch-prices-history``: points per token id."""

    history: dict[str, list[msgspec.Raw]] | None = None


_POINT = msgspec.json.Decoder(HistoryPoint)


def parse_history_point(
    raw: HistoryPoint | msgspec.Raw | bytes | dict[str, Any], token: str
) -> Snapshot:
    """A price point of ``token`` as a row at its own time. ``p`` is the displayed price (no
    bid, ask or last trade: the venue's history has none)."""
    kind = "history"
    point: HistoryPoint = as_wire(raw, HistoryPoint, _POINT, kind, VENUE)
    if not token.isdigit():
        raise _fail(kind, f"token is not a decimal string: {token!r:.40}")
    stamp = as_number(point.t, "t", kind)
    if stamp is None:
        raise _fail(kind, "t is missing")
    price = _as_probability(point.p, "p", kind)
    if price is None:
        raise _fail(kind, "p is missing")
    return Snapshot(time=from_unix(stamp, kind, "t", VENUE), outcome_id=PREFIX + token, price=price)
