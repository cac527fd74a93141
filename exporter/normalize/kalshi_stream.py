"""Kalshi's websocket, pure: messages in, quotes and sequence gaps out (API_NOTES 2.8).

``ticker`` messages carry the top of book (``yes_bid_dollars``/``yes_ask_dollars`` with their
sizes; a side of size 0 is no quote) and the last trade (``price_dollars``); they carry no
``seq``. Every other message of a subscription (``trade``, ``ok`` acks, book messages) carries
``seq``, one counter per ``sid``: :class:`Sequences` reports a gap when one is skipped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from exporter.errors import ParseError
from exporter.model import Snapshot, Venue, displayed_price, outcome_id
from exporter.normalize.kalshi import top_of_book

VENUE = Venue.KALSHI


def parse_message(text: str) -> dict[str, Any]:
    """One frame (Kalshi sends one JSON object a frame).

    Trimmed real frame (ws_demo_orderbook_ticker_frames_2026-08-27.jsonl)::

        {"type": "ticker", "sid": 2, "msg": {"market_ticker": "KXGOLDH-26AUG2711-T4615.99",
         "price_dollars": "0.0100", "yes_bid_dollars": "0.0100", "yes_ask_dollars": "0.9800",
         "yes_bid_size_fp": "1410.00", "yes_ask_size_fp": "100.00", "ts": 1787838983, ...}}
    """
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ParseError(VENUE.value, "stream", f"frame is not JSON: {text!r:.60}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ParseError(VENUE.value, "stream", f"frame is not a typed object: {text!r:.60}")
    return message


def parse_ticker(message: dict[str, Any], received_at: datetime) -> Snapshot | None:
    """A ``ticker`` message as a snapshot row (receive time), or None when nothing can be shown."""
    msg = message.get("msg")
    if not isinstance(msg, dict):
        raise ParseError(VENUE.value, "stream", "ticker without msg")
    ticker = msg.get("market_ticker")
    if not isinstance(ticker, str) or not ticker:
        raise ParseError(VENUE.value, "stream", "ticker without market_ticker")
    bid, ask, last = top_of_book(msg, "stream", last_key="price")
    price = displayed_price(bid, ask, last)
    if price is None:
        return None
    return Snapshot(
        time=received_at,
        outcome_id=outcome_id(VENUE, ticker),
        price=price,
        bid=bid,
        ask=ask,
        last_trade=last,
    )


class Sequences:
    """The last ``seq`` of each subscription."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}

    def check(self, message: dict[str, Any]) -> bool:
        """Record the message's ``seq``; True when numbers were skipped on its ``sid``."""
        sid, seq = message.get("sid"), message.get("seq")
        if not isinstance(sid, int) or not isinstance(seq, int):
            return False
        previous = self.last.get(sid)
        self.last[sid] = seq
        return previous is not None and seq != previous + 1

    def reset(self) -> None:
        self.last.clear()
