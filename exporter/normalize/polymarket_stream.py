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

import orjson

from exporter.errors import ParseError
from exporter.model import Snapshot, Venue, displayed_price, is_probability, outcome_id

VENUE = Venue.POLYMARKET
TEXT_FRAMES = frozenset({"PONG", "NO NEW ASSETS"})
"""Plain-text frames the channel sends."""


def parse_frame(text: str) -> list[dict[str, Any]] | str:
    """The messages of one frame, or the frame itself when it is one of :data:`TEXT_FRAMES`.

    Trimmed real frame (ws_market_real_messages.jsonl)::

        [{"market": "0x6bd5…", "asset_id": "3509…6", "timestamp": "1786604072222",
          "hash": "ed47…", "bids": [{"price": "0.01", "size": "3149725.72"}, …],
          "asks": [{"price": "0.99", "size": "156606.14"}, …], "event_type": "book"}]
    """
    stripped = text.strip()
    if stripped in TEXT_FRAMES:
        return stripped
    try:
        data = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        raise ParseError(VENUE.value, "stream", f"frame is not JSON: {stripped!r:.60}") from None
    items = data if isinstance(data, list) else [data]
    if not all(isinstance(item, dict) for item in items):
        raise ParseError(VENUE.value, "stream", f"frame holds a non-object: {stripped!r:.60}")
    return items


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


def _price(raw: dict[str, Any], key: str, *, empty_at: float | None = None) -> float | None:
    """A price string; ``""`` means none, and so does ``empty_at`` (the channel reports an empty
    side as a best bid of 0 or a best ask of 1)."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise ParseError(VENUE.value, "stream", f"{key} is {value!r:.30}") from None
    if not is_probability(price):
        raise ParseError(VENUE.value, "stream", f"{key} is {value!r:.30}")
    if empty_at is not None and price == empty_at:
        return None
    return price


def _asset(raw: dict[str, Any]) -> str:
    token = raw.get("asset_id")
    if not isinstance(token, str) or not token.isdigit():
        raise ParseError(VENUE.value, "stream", f"asset_id is {token!r:.40}")
    return token


def _size(raw: dict[str, Any]) -> float:
    try:
        size = float(raw.get("size", ""))
    except (TypeError, ValueError):
        raise ParseError(VENUE.value, "stream", f"size is {raw.get('size')!r:.30}") from None
    if not size >= 0:
        raise ParseError(VENUE.value, "stream", f"size is {raw.get('size')!r:.30}")
    return size


def _levels(raw: dict[str, Any], key: str) -> dict[float, float]:
    levels = raw.get(key) or []
    if not isinstance(levels, list):
        raise ParseError(VENUE.value, "stream", f"{key} is not a list")
    book = {}
    for level in levels:
        if not isinstance(level, dict):
            raise ParseError(VENUE.value, "stream", f"{key} holds {level!r:.30}")
        price = _price(level, "price")
        if price is None:
            raise ParseError(VENUE.value, "stream", f"{key} level without a price")
        size = _size(level)
        if size > 0:
            book[price] = size
    return book


def _change(raw: dict[str, Any]) -> tuple[str, str, float, float, float | None, float | None, bool]:
    """One level change: asset, side, price, new size, and the best bid/ask after it when the
    message gives them (the current format; the 2024 flat format does not)."""
    side = raw.get("side")
    if side not in ("BUY", "SELL"):
        raise ParseError(VENUE.value, "stream", f"side is {side!r:.20}")
    price = _price(raw, "price")
    if price is None:
        raise ParseError(VENUE.value, "stream", "price change without a price")
    given = "best_bid" in raw or "best_ask" in raw
    return (
        _asset(raw), side, price, _size(raw),
        _price(raw, "best_bid", empty_at=0.0), _price(raw, "best_ask", empty_at=1.0), given,
    )  # fmt: skip


class Books:
    """Top of book of every asset seen on the channel."""

    def __init__(self) -> None:
        self.tops: dict[str, Top] = {}

    def apply(self, message: dict[str, Any]) -> tuple[str, set[str]]:
        """Apply one message; returns its type and the assets whose top of book changed.
        Raises :class:`ParseError` for a malformed message (the books are left as they were)."""
        kind = message.get("event_type")
        if kind == "book":
            asset = _asset(message)
            bids, asks = _levels(message, "bids"), _levels(message, "asks")
            fresh = self.tops.setdefault(asset, Top())
            fresh.bids, fresh.asks = bids, asks
            fresh.recompute()
            last = _price(message, "last_trade_price")
            if last is not None:
                fresh.last_trade = last
            fresh.valid = True
            return "book", {asset}
        if kind == "price_change":
            # The current form lists changes in price_changes; the 2024 form is one flat change.
            changes = message.get("price_changes", [message])
            if not isinstance(changes, list):
                raise ParseError(VENUE.value, "stream", "price_changes is not a list")
            updates = []
            for change in changes:
                if not isinstance(change, dict):
                    raise ParseError(VENUE.value, "stream", f"price_changes holds {change!r:.30}")
                updates.append(_change(change))
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
            asset = _asset(message)
            bid = _price(message, "best_bid", empty_at=0.0)
            ask = _price(message, "best_ask", empty_at=1.0)
            top = self.tops.get(asset)
            if top is None or not top.valid:
                return "best_bid_ask", set()
            top.bid, top.ask = bid, ask
            return "best_bid_ask", {asset}
        if kind == "last_trade_price":
            asset = _asset(message)
            traded_at = _price(message, "price")
            traded = self.tops.setdefault(asset, Top())
            traded.last_trade = traded_at
            return "last_trade_price", {asset} if traded.valid else set()
        if kind == "tick_size_change":
            asset = _asset(message)
            top = self.tops.get(asset)
            if top is not None:
                top.valid = False
            return "tick_size_change", set()
        if isinstance(kind, str) and kind:
            return kind, set()  # new_market, market_resolved, ...: nothing for the books
        raise ParseError(VENUE.value, "stream", f"message without an event_type: {message!r:.60}")

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
