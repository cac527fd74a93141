"""Our records: markets, outcomes, snapshots and trades, the same for every venue.

Records are frozen msgspec Structs: built in C, as a sweep builds hundreds of thousands of them
(no field holds a container that could point back, hence ``gc=False``). Ids are strings prefixed
by venue (``polymarket:<conditionId>``, ``kalshi:<ticker>``); venue token ids stay strings (they
exceed 64-bit integers). Prices are probabilities in 0..1, times aware UTC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec


class Venue(StrEnum):
    POLYMARKET = "polymarket"
    KALSHI = "kalshi"


class MarketStatus(StrEnum):
    """One vocabulary for both venues; each venue's parser maps its own names onto it."""

    UPCOMING = "upcoming"  # listed, not yet trading (Kalshi `initialized`)
    OPEN = "open"  # trading
    PAUSED = "paused"  # temporarily halted (Kalshi `inactive`)
    CLOSED = "closed"  # no longer trading, outcome not final yet
    RESOLVED = "resolved"  # settled / finalized
    DELISTED = "delisted"  # no longer served by the venue's open listing


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


def market_id(venue: Venue, native_id: str) -> str:
    """``polymarket:<conditionId>`` or ``kalshi:<ticker>``."""
    return f"{venue.value}:{native_id}"


def outcome_id(venue: Venue, native_id: str) -> str:
    """``polymarket:<token id>`` or ``kalshi:<ticker>`` (Kalshi: the YES side)."""
    return f"{venue.value}:{native_id}"


def shard_of(venue: Venue | str, native_id: str, count: int) -> int:
    """The shard (0 to ``count - 1``) owning a market: a stable hash of its venue and native id,
    the same in every process, machine and release (never Python's ``hash``)."""
    key = f"{Venue(venue).value}:{native_id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % count


def owner(venue: Venue, index: int, count: int) -> Callable[[str], bool]:
    """Whether shard ``index`` of ``count`` owns a market of ``venue`` (by native id)."""
    if count == 1:
        return lambda _native: True
    return lambda native: shard_of(venue, native, count) == index


def native_of(record_id: str) -> str:
    """The venue's own id within one of ours: ``polymarket:0xabc`` -> ``0xabc``."""
    return record_id.partition(":")[2]


def venue_of(record_id: str) -> Venue:
    """The venue a prefixed market or outcome id belongs to."""
    return Venue(record_id.split(":", 1)[0])


class Market(msgspec.Struct, frozen=True, gc=False):
    market_id: str
    venue: Venue
    native_id: str
    title: str
    status: MarketStatus
    observed_at: datetime
    category: str = "Other"
    url: str | None = None
    event_id: str | None = None
    event_title: str | None = None
    slug: str | None = None
    end_time: datetime | None = None
    volume_total: float | None = None
    volume_24h: float | None = None
    liquidity: float | None = None
    open_interest: float | None = None
    tags: tuple[str, ...] = ()
    listed_at: datetime | None = None
    """When the venue created the market (Gamma's ``createdAt``, Kalshi's ``created_time``)."""


class Outcome(msgspec.Struct, frozen=True, gc=False):
    outcome_id: str
    market_id: str
    venue: Venue
    native_id: str
    name: str
    position: int
    """Index of the outcome within its market; 0 is the first (YES) outcome."""
    observed_at: datetime


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """The state of one outcome at one time; ``price`` is the displayed price."""

    time: datetime
    outcome_id: str
    price: float
    bid: float | None = None
    ask: float | None = None
    last_trade: float | None = None
    volume_24h: float | None = None
    liquidity: float | None = None

    def quote(self) -> tuple[float, float | None, float | None, float | None]:
        """The fields whose change makes a new row under change-only storage."""
        return (self.price, self.bid, self.ask, self.last_trade)


class Trade(msgspec.Struct, frozen=True, gc=False):
    time: datetime
    outcome_id: str
    venue: Venue
    trade_id: str
    """Unique per venue (Polymarket: transaction hash + asset + fill; Kalshi: ``trade_id``)."""
    price: float
    size: float
    side: Side | None = None
    trader: str | None = None


WIDE_SPREAD = 0.10


def displayed_price(bid: float | None, ask: float | None, last_trade: float | None) -> float | None:
    """The price a venue shows: the bid/ask midpoint, or the last trade when the spread is wider
    than 0.10 or a side is missing (Polymarket's rule, applied to both venues).

    Falls back to the midpoint when there is no last trade, and to None when nothing is known.
    """
    if bid is not None and ask is not None and ask >= bid:
        mid = (bid + ask) / 2
        if ask - bid <= WIDE_SPREAD + 1e-9 or last_trade is None:
            return mid
        return last_trade
    return last_trade


def is_probability(value: float | None) -> bool:
    # NaN fails every comparison and infinities fall outside: no isfinite call needed.
    return value is not None and 0.0 <= value <= 1.0


@dataclass(frozen=True)
class StoredAlert:
    """One alert of a notification, as stored."""

    time: datetime
    status: str
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    receiver: str | None


@dataclass(frozen=True, slots=True)
class Mover:
    """One row of a window's stored ranking (``movers``)."""

    window_label: str
    rank: int
    category_rank: int
    venue: str
    market_id: str
    outcome_id: str
    title: str
    outcome: str
    category: str
    url: str | None
    price_then: float
    price_now: float
    move_pp: float
    score: float
    volume_24h: float | None
    liquidity: float | None
    spread: float | None
    then_time: datetime
    now_time: datetime
    end_time: datetime | None
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class CategoryMove:
    """One category's aggregate over a window (``category_moves``)."""

    window_label: str
    category: str
    markets: int
    moved: int
    moved_up: int
    moved_down: int
    mean_abs_move_pp: float
    top_market_id: str | None
    top_title: str | None
    top_move_pp: float | None
    computed_at: datetime
