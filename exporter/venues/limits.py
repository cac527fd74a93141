"""Client-side rate limits that hold in every window: never more than ``limit`` requests in any
``window`` seconds, however they bunch up.

A leaky bucket (aiolimiter's) lets a full bucket's burst through and then drains continuously, so
one window of the venue's length can see almost twice the rate. Venues count requests in sliding
(or fixed) windows, so this keeps the times of the last ``limit`` grants and admits the next one
only once the oldest of them is a whole window old.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

MARGIN = 0.05
"""Seconds added to every wait: a request reaches the venue a little after its grant (a busy
event loop, the network), and a later one may arrive sooner after its own, so grants spaced by
exactly a window can land ``limit + 1`` in one of the venue's windows. 50 ms cost Kalshi's
keyless 3 reads a second 5 %."""


class SlidingWindow:
    """At most ``limit`` acquisitions in any window of ``window`` seconds, granted in order."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a limit of {limit} per {window} s admits nothing")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._grants: deque[float] = deque(maxlen=limit)
        self._lock = asyncio.Lock()

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next grant keeps the guarantee."""
        if len(self._grants) < self.limit:
            return 0.0
        return max(0.0, self._grants[0] + self.window + MARGIN - now)

    def grant(self, at: float) -> None:
        """Record a grant at ``at`` (not earlier than the previous one)."""
        self._grants.append(at)

    async def acquire(self) -> None:
        """Wait for a slot; waiters are served in arrival order."""
        async with self._lock:
            while (wait := self.delay(self._clock())) > 0:
                await self._sleep(wait)
            self.grant(self._clock())
