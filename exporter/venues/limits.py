"""Client-side rate limits that hold in every window: never more than ``limit`` requests in any
``window`` seconds, however they bunch up.

A leaky bucket (aiolimiter's) lets a full bucket's burst through and then drains continuously, so
one window of the venue's length can see almost twice the rate. Venues count requests in sliding
(or fixed) windows, so this keeps the times of the last ``limit`` grants and admits the next one
only once the oldest of them is a whole window old.

Two lanes share a window: live requests (the jobs' and streams') and spare ones (the history
backfill), which take only what live ones leave: a spare request is granted only while no live
one waits, and while live requests were granted within the last window it leaves
:data:`SPARE_RESERVE` of the window's slots free for them. A live request therefore waits at
most one window for slots spare ones took.
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
SPARE_RESERVE = 0.2
"""Share of a window's slots spare requests leave free while live ones are being granted."""
SPARE_POLL = 0.02
"""Seconds a spare request waits before looking again while a live one waits."""


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
        self._spare = asyncio.Lock()
        self._live_waiting = 0
        self._last_live = float("-inf")
        self.reserve = max(1, round(limit * SPARE_RESERVE)) if limit > 1 else 0
        """Slots spare requests leave free while live ones are active."""

    def delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before the next grant keeps the guarantee."""
        if len(self._grants) < self.limit:
            return 0.0
        return max(0.0, self._grants[0] + self.window + MARGIN - now)

    def grant(self, at: float) -> None:
        """Record a grant at ``at`` (not earlier than the previous one)."""
        self._grants.append(at)

    def spare_delay(self, now: float) -> float:
        """Seconds to wait from ``now`` before a spare grant leaves live requests their share:
        the whole limit when none was granted within the last window, else the limit less
        :attr:`reserve`."""
        allowed = self.limit
        if now - self._last_live < self.window + MARGIN:
            allowed -= self.reserve
        recent = [t for t in self._grants if t > now - self.window - MARGIN]
        if len(recent) < allowed:
            return 0.0
        if allowed <= 0:
            return self._last_live + self.window + MARGIN - now
        return recent[len(recent) - allowed] + self.window + MARGIN - now

    async def acquire(self, *, spare: bool = False) -> None:
        """Wait for a slot; live waiters are served in arrival order, spare ones (``spare``)
        after them and only from what they leave."""
        if spare:
            await self._acquire_spare()
            return
        self._live_waiting += 1
        try:
            async with self._lock:
                while (wait := self.delay(self._clock())) > 0:
                    await self._sleep(wait)
                now = self._clock()
                self.grant(now)
                self._last_live = now
        finally:
            self._live_waiting -= 1

    async def _acquire_spare(self) -> None:
        async with self._spare:
            while True:
                now = self._clock()
                if self._live_waiting:
                    await self._sleep(SPARE_POLL)
                    continue
                wait = max(self.delay(now), self.spare_delay(now))
                if wait <= 0:
                    self.grant(now)
                    return
                await self._sleep(min(wait, self.window))
