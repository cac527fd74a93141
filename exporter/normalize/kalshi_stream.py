"""Kalshi's websocket, pure: frames in, quotes and sequence gaps out (API_NOTES 2.8).

A frame is one JSON object: its ``type``, the subscription's ``sid``, and ``msg``, left as bytes
until the type says what it holds. ``ticker`` messages carry the top of book
(``yes_bid_dollars``/``yes_ask_dollars`` with their sizes; a side of size 0 is no quote) and the
last trade (``price_dollars``); they carry no ``seq``. Every other message of a subscription
(``trade``, ``ok`` acks, book messages) carries ``seq``, one counter per ``sid``:
:class:`Sequences` reports a gap when one is skipped.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import msgspec

from exporter.errors import ParseError
from exporter.model import Snapshot, Venue, displayed_price, outcome_id
from exporter.normalize.fields import decoded
from exporter.normalize.kalshi import YesQuote, top_of_book

VENUE = Venue.KALSHI


class KalshiFrame(msgspec.Struct, frozen=True, gc=False):
    type: str
    sid: int | None = None
    seq: int | None = None
    msg: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    """The message's body as bytes (empty when the frame has none)."""

    def body(self, what: str) -> msgspec.Raw:
        """``msg``, or a ParseError naming ``what`` when the frame carries none."""
        if len(self.msg) == 0 or bytes(self.msg) == b"null":
            raise ParseError(VENUE.value, "stream", f"{what} without msg")
        return self.msg


class Ticker(YesQuote, frozen=True):
    """A ``ticker`` message's ``msg``: prices and sizes exact."""

    market_ticker: str | None = None
    price_dollars: Decimal | None = None
    price: Decimal | None = None


class Subscribed(msgspec.Struct, frozen=True, gc=False):
    """A ``subscribed`` answer's ``msg``: which channel runs under which sid."""

    channel: str | None = None
    sid: int | None = None


_FRAME = msgspec.json.Decoder(KalshiFrame)
_TICKER = msgspec.json.Decoder(Ticker)
_SUBSCRIBED = msgspec.json.Decoder(Subscribed)


def parse_message(text: str | bytes) -> KalshiFrame:
    """One frame (Kalshi sends one JSON object a frame).

    Trimmed real frame (ws_demo_orderbook_ticker_frames_2026-08-27.jsonl)::

        {"type": "ticker", "sid": 2, "msg": {"market_ticker": "KXGOLDH-26AUG2711-T4615.99",
         "price_dollars": "0.0100", "yes_bid_dollars": "0.0100", "yes_ask_dollars": "0.9800",
         "yes_bid_size_fp": "1410.00", "yes_ask_size_fp": "100.00", "ts": 1787838983, ...}}
    """
    frame: KalshiFrame = decoded(_FRAME, text, "stream", VENUE)
    return frame


def parse_subscribed(frame: KalshiFrame) -> Subscribed:
    subscribed: Subscribed = decoded(_SUBSCRIBED, frame.body("subscribed"), "stream", VENUE)
    return subscribed


def parse_ticker(frame: KalshiFrame, received_at: datetime) -> Snapshot | None:
    """A ``ticker`` message as a snapshot row (receive time), or None when nothing can be shown."""
    msg: Ticker = decoded(_TICKER, frame.body("ticker"), "stream", VENUE)
    if not msg.market_ticker:
        raise ParseError(VENUE.value, "stream", "ticker without market_ticker")
    bid, ask, last = top_of_book(msg, msg.price_dollars, msg.price, "price", "stream")
    price = displayed_price(bid, ask, last)
    if price is None:
        return None
    return Snapshot(
        time=received_at,
        outcome_id=outcome_id(VENUE, msg.market_ticker),
        price=price,
        bid=bid,
        ask=ask,
        last_trade=last,
    )


class Sequences:
    """The last ``seq`` of each subscription."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}

    def check(self, frame: KalshiFrame) -> bool:
        """Record the frame's ``seq``; True when numbers were skipped on its ``sid``."""
        sid, seq = frame.sid, frame.seq
        if sid is None or seq is None:
            return False
        previous = self.last.get(sid)
        self.last[sid] = seq
        return previous is not None and seq != previous + 1

    def reset(self) -> None:
        self.last.clear()
