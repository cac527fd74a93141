"""Polymarket's CLOB market channel, pure: frames in, top of book per asset out (API_NOTES 1.7).

A frame is one JSON object, a JSON array of them, or plain text (``PONG``, ``NO NEW ASSETS``).
:class:`Books` keeps the best bid, best ask and last trade of each asset: ``book`` replaces them,
``price_change`` sets them from each change's ``best_bid``/``best_ask`` (``size`` is the level's
new total, so the message's own best prices are the top of book after it), ``best_bid_ask`` sets
them too, ``last_trade_price`` records the trade, and ``tick_size_change`` drops the asset's book
until the next ``book`` (old-grid levels may be invalid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from exporter.errors import ParseError
from exporter.model import Snapshot, Trade, Venue, displayed_price, is_probability, outcome_id
from exporter.normalize.fields import as_wire, decoded
from exporter.normalize.polymarket import parse_trade

VENUE = Venue.POLYMARKET
TEXT_FRAMES = frozenset({"PONG", "NO NEW ASSETS"})
"""Plain-text frames the channel sends."""
Number = str | float
"""Prices and sizes come as decimal strings (``".48"``); a number is read the same way."""


class Level(msgspec.Struct, gc=False):
    price: Number | None = None
    size: Number | None = None


class Change(msgspec.Struct, gc=False):
    """One level change of a ``price_change``, with the top of book after it when given
    (the current format; the 2024 flat format has no ``best_bid``/``best_ask``)."""

    asset_id: str | None = None
    side: str | None = None
    price: Number | None = None
    size: Number | None = None
    best_bid: Number | UnsetType | None = UNSET
    best_ask: Number | UnsetType | None = UNSET


class MarketMessage(Change, gc=False):
    """Any message of the channel: its ``event_type`` says which fields it carries (a
    ``price_change`` in the 2024 flat form is itself one :class:`Change`)."""

    event_type: str | None = None
    bids: list[Level] | None = None
    asks: list[Level] | None = None
    last_trade_price: Number | None = None
    price_changes: list[Change] | UnsetType = UNSET


_MESSAGE = msgspec.json.Decoder(MarketMessage)
_MESSAGES = msgspec.json.Decoder(list[msgspec.Raw])
Message = MarketMessage | msgspec.Raw | bytes | dict[str, Any]
"""A message as :meth:`Books.apply` takes it: decoded, as its frame's bytes, or a plain dict
(a REST book, a test)."""


def parse_frame(text: str | bytes) -> list[msgspec.Raw] | str:
    """The messages of one frame, each still bytes (a malformed one is refused alone when it is
    applied), or the frame itself when it is one of :data:`TEXT_FRAMES`.

    Trimmed real frame (ws_market_real_messages.jsonl)::

        [{"market": "0x6bd5…", "asset_id": "3509…6", "timestamp": "1786604072222",
          "hash": "ed47…", "bids": [{"price": "0.01", "size": "3149725.72"}, …],
          "asks": [{"price": "0.99", "size": "156606.14"}, …], "event_type": "book"}]
    """
    data = text.encode() if isinstance(text, str) else text
    stripped = data.strip()
    if stripped[:1] == b"[":
        messages: list[msgspec.Raw] = decoded(_MESSAGES, stripped, "stream", VENUE)
        return messages
    if stripped[:1] == b"{":
        return [msgspec.Raw(stripped)]
    shown = stripped.decode(errors="replace")
    if shown in TEXT_FRAMES:
        return shown
    raise ParseError(VENUE.value, "stream", f"frame is not JSON: {shown!r:.60}")


def decode_message(message: Message) -> MarketMessage:
    decoded_message: MarketMessage = as_wire(message, MarketMessage, _MESSAGE, "stream", VENUE)
    return decoded_message


@dataclass(slots=True)
class Top:
    """One asset's book (price -> size per side) and its top; ``valid`` is False between a
    tick-size change and the next ``book``."""

    bid: float | None = None
    ask: float | None = None
    last_trade: float | None = None
    valid: bool = False
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)

    def set_level(self, side: str, price: float, size: float) -> None:
        levels = self.bids if side == "BUY" else self.asks
        if size <= 0:
            levels.pop(price, None)
        else:
            levels[price] = size

    def recompute(self) -> None:
        self.bid = max(self.bids) if self.bids else None
        self.ask = min(self.asks) if self.asks else None


def _price(value: Number | UnsetType | None, key: str, *,
           empty_at: float | None = None) -> float | None:  # fmt: skip
    """A price string; ``""`` means none, and so does ``empty_at`` (the channel reports an empty
    side as a best bid of 0 or a best ask of 1)."""
    if value is None or value == "" or value is UNSET:
        return None
    try:
        price = float(value)
    except ValueError:
        raise ParseError(VENUE.value, "stream", f"{key} is {value!r:.30}") from None
    if not is_probability(price):
        raise ParseError(VENUE.value, "stream", f"{key} is {value!r:.30}")
    if empty_at is not None and price == empty_at:
        return None
    return price


def _asset(token: str | None) -> str:
    if token is None or not token.isdigit():
        raise ParseError(VENUE.value, "stream", f"asset_id is {token!r:.40}")
    return token


def _size(value: Number | None) -> float:
    try:
        size = float(value if value is not None else "")
    except ValueError:
        raise ParseError(VENUE.value, "stream", f"size is {value!r:.30}") from None
    if not size >= 0:
        raise ParseError(VENUE.value, "stream", f"size is {value!r:.30}")
    return size


def _levels(levels: list[Level] | None, key: str) -> dict[float, float]:
    book = {}
    for level in levels or ():
        price = _price(level.price, "price")
        if price is None:
            raise ParseError(VENUE.value, "stream", f"{key} level without a price")
        size = _size(level.size)
        if size > 0:
            book[price] = size
    return book


def _change(raw: Change) -> tuple[str, str, float, float, float | None, float | None, bool]:
    """One level change: asset, side, price, new size, and the best bid/ask after it when the
    message gives them (the current format; the 2024 flat format does not)."""
    side = raw.side
    if side not in ("BUY", "SELL"):
        raise ParseError(VENUE.value, "stream", f"side is {side!r:.20}")
    price = _price(raw.price, "price")
    if price is None:
        raise ParseError(VENUE.value, "stream", "price change without a price")
    given = raw.best_bid is not UNSET or raw.best_ask is not UNSET
    return (
        _asset(raw.asset_id), side, price, _size(raw.size),
        _price(raw.best_bid, "best_bid", empty_at=0.0),
        _price(raw.best_ask, "best_ask", empty_at=1.0), given,
    )  # fmt: skip


class Books:
    """Top of book of every asset seen on the channel."""

    def __init__(self) -> None:
        self.tops: dict[str, Top] = {}

    def apply(self, raw: Message) -> tuple[str, set[str]]:
        """Apply one message; returns its type and the assets whose top of book changed.
        Raises :class:`ParseError` for a malformed message (the books are left as they were)."""
        message = decode_message(raw)
        kind = message.event_type
        if kind == "book":
            asset = _asset(message.asset_id)
            bids, asks = _levels(message.bids, "bids"), _levels(message.asks, "asks")
            last = _price(message.last_trade_price, "last_trade_price")
            fresh = self.tops.setdefault(asset, Top())
            fresh.bids, fresh.asks = bids, asks
            fresh.recompute()
            if last is not None:
                fresh.last_trade = last
            fresh.valid = True
            return "book", {asset}
        if kind == "price_change":
            # The current form lists changes in price_changes; the 2024 form is one flat change.
            changes = [message] if message.price_changes is UNSET else message.price_changes
            updates = [_change(change) for change in changes]
            changed = set()
            for asset, side, price, size, bid, ask, given in updates:
                top = self.tops.get(asset)
                if top is None or not top.valid:
                    continue  # no book yet (or dropped): wait for the next snapshot
                top.set_level(side, price, size)
                if given:  # the venue's own top of book after the change
                    top.bid, top.ask = bid, ask
                else:
                    top.recompute()
                changed.add(asset)
            return "price_change", changed
        if kind == "best_bid_ask":
            asset = _asset(message.asset_id)
            bid = _price(message.best_bid, "best_bid", empty_at=0.0)
            ask = _price(message.best_ask, "best_ask", empty_at=1.0)
            top = self.tops.get(asset)
            if top is None or not top.valid:
                return "best_bid_ask", set()
            top.bid, top.ask = bid, ask
            return "best_bid_ask", {asset}
        if kind == "last_trade_price":
            asset = _asset(message.asset_id)
            traded_at = _price(message.price, "price")
            traded = self.tops.setdefault(asset, Top())
            traded.last_trade = traded_at
            return "last_trade_price", {asset} if traded.valid else set()
        if kind == "tick_size_change":
            asset = _asset(message.asset_id)
            top = self.tops.get(asset)
            if top is not None:
                top.valid = False
            return "tick_size_change", set()
        if kind:
            return kind, set()  # new_market, market_resolved, ...: nothing for the books
        raise ParseError(VENUE.value, "stream", "message without an event_type")

    def snapshot(self, asset: str, received_at: datetime) -> Snapshot | None:
        """The asset's displayed price as a snapshot row, or None when nothing can be shown."""
        top = self.tops.get(asset)
        if top is None or not top.valid:
            return None
        price = displayed_price(top.bid, top.ask, top.last_trade)
        if price is None:
            return None
        return Snapshot(
            time=received_at,
            outcome_id=outcome_id(VENUE, asset),
            price=price,
            bid=top.bid,
            ask=top.ask,
            last_trade=top.last_trade,
        )

    def forget(self, assets: set[str]) -> None:
        for asset in assets:
            self.tops.pop(asset, None)


class RtdsFrame(msgspec.Struct, frozen=True, gc=False):
    """A frame of the real-time data socket: its topic and type, the payload left as bytes."""

    topic: str | None = None
    type: str | None = None
    payload: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


_RTDS = msgspec.json.Decoder(RtdsFrame)


def parse_rtds(text: str | bytes) -> Trade | None:
    """The trade of one RTDS frame; None for other topics and for ``PONG``. The payload is the
    Data API's trade row (``timestamp`` in seconds; the envelope's is in milliseconds), so it
    parses into the same trade id.

    Trimmed real frame (rtds_activity_trades_2026-08-19.jsonl)::

        {"connection_id": "gXse…", "topic": "activity", "type": "trades",
         "timestamp": 1787102287053, "payload": {"asset": "7255…7074", "conditionId": "0x1d87…",
         "outcomeIndex": 1, "price": 0.26, "proxyWallet": "0x510F…", "side": "BUY",
         "size": 2.7027, "timestamp": 1787102287, "transactionHash": "0xb6ac…"}}
    """
    if len(text) < 16 and (text.decode() if isinstance(text, bytes) else text).strip() == "PONG":
        return None
    frame: RtdsFrame = decoded(_RTDS, text, "trade", VENUE)
    if frame.topic != "activity" or frame.type != "trades":
        return None
    if len(frame.payload) == 0:
        raise ParseError(VENUE.value, "trade", "RTDS trade without payload")
    return parse_trade(frame.payload)
