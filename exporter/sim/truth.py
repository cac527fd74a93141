"""What the simulator served and did: the truth a test compares the database with."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ServedQuote:
    """Top of book for one outcome as it was served. Prices are probabilities; None where the
    response carried no such value (an empty book side, no trade yet)."""

    seconds: float
    endpoint: str
    bid: float | None
    ask: float | None
    last: float | None


@dataclass(frozen=True, slots=True)
class Injected:
    """A scripted fault that actually hit a request or a connection."""

    seconds: float
    action: str
    endpoint: str
    detail: str = ""


@dataclass(slots=True)
class Truth:
    quotes: dict[str, ServedQuote] = field(default_factory=dict)
    """Last served quote by outcome key: Polymarket token id or Kalshi ticker."""
    listed: dict[str, set[str]] = field(default_factory=dict)
    """Market keys (condition ids, tickers) each listing endpoint has served."""
    responses: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Responses by ``(endpoint, status)``."""
    injected: list[Injected] = field(default_factory=list)
    malformed: list[tuple[str, str]] = field(default_factory=list)
    """``(endpoint, market or trade key)`` of every record served corrupted."""
    frames: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Websocket frames sent by ``(venue, message type)``."""
    arrivals: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=100_000))
    """``(monotonic real time, endpoint)`` of the latest REST requests, to check budgets."""

    def quote(
        self,
        key: str,
        endpoint: str,
        seconds: float,
        bid: float | None,
        ask: float | None,
        last: float | None,
    ) -> None:
        self.quotes[key] = ServedQuote(seconds, endpoint, bid, ask, last)

    def record_listing(self, endpoint: str, keys: list[str]) -> None:
        self.listed.setdefault(endpoint, set()).update(keys)

    def hits(self, action: str) -> list[Injected]:
        return [i for i in self.injected if i.action == action]
