"""The scenario's fault windows, asked per request (REST) or per frame (websockets)."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from exporter.sim.scenario import Entry, Scenario
from exporter.sim.truth import Injected, Truth

# 429 bodies as the venues send them. Kalshi: the observed unauthenticated form and the
# documented form (API_NOTES 2.7); neither comes with Retry-After.
KALSHI_429 = (
    {"error": {"code": "too_many_requests", "message": "too many requests"}},
    {"error": "too many requests"},
)
POLYMARKET_429 = {"error": "Too Many Requests"}


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    body: object


class Faults:
    """Decides, from the timeline, what happens to one request at a simulated time."""

    def __init__(self, scenario: Scenario, truth: Truth) -> None:
        self.truth = truth
        self._entries = [
            e
            for e in scenario.timeline
            if e.action not in ("jump", "close", "trade", "gap", "add_markets")
        ]
        self._truncations_left = {
            id(e): e.truncate.times for e in self._entries if e.truncate is not None
        }
        self._refusals = 0

    def _active(self, action: str, venue: str, endpoint: str, now: float) -> Entry | None:
        for entry in self._entries:
            if entry.action != action or not entry.start <= now < entry.end:
                continue
            payload = entry.payload
            if payload.venue not in (venue, "all"):
                continue
            if endpoint and not fnmatchcase(endpoint, getattr(payload, "endpoint", "*")):
                continue
            return entry
        return None

    def refusal(self, venue: str, endpoint: str, now: float) -> Refusal | None:
        """A 429 or 5xx to send instead of the response, if a window says so."""
        if self._active("rate_limit", venue, endpoint, now):
            self._note(now, "rate_limit", endpoint)
            if venue == "kalshi":
                self._refusals += 1
                return Refusal(429, KALSHI_429[(self._refusals - 1) % 2])
            return Refusal(429, POLYMARKET_429)
        entry = self._active("server_error", venue, endpoint, now)
        if entry is not None and entry.server_error is not None:
            self._note(now, "server_error", endpoint, str(entry.server_error.status))
            return Refusal(entry.server_error.status, {"error": "internal server error"})
        return None

    def delay(self, venue: str, endpoint: str, now: float) -> float:
        entry = self._active("throttle", venue, endpoint, now)
        if entry is None or entry.throttle is None:
            return 0.0
        self._note(now, "throttle", endpoint)
        return entry.throttle.delay.total_seconds()

    def truncate(self, venue: str, endpoint: str, now: float) -> bool:
        entry = self._active("truncate", venue, endpoint, now)
        if entry is None or self._truncations_left.get(id(entry), 0) <= 0:
            return False
        self._truncations_left[id(entry)] -= 1
        self._note(now, "truncate", endpoint)
        return True

    def malformed(self, venue: str, endpoint: str, page: int, now: float) -> bool:
        """Whether the first record of this page (1-based) is to be served corrupted."""
        entry = self._active("malformed", venue, endpoint, now)
        return entry is not None and entry.malformed is not None and entry.malformed.page == page

    def silent(self, venue: str, now: float) -> bool:
        return self._active("silence", venue, "", now) is not None

    def _note(self, now: float, action: str, endpoint: str, detail: str = "") -> None:
        self.truth.injected.append(Injected(now, action, endpoint, detail))
