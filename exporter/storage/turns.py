"""Turns on the database: the movers refresh first, heavy background work in the gaps.

The exporter-managed rollups re-rolling a backfilled week (plain PostgreSQL) and TimescaleDB's
refresh of the continuous aggregates over it are long pieces of work in steps (a transaction
each). Run beside a movers refresh, they take the cores it needs (the refresh doubled). So a
step starts only when it fits before the next refresh is due (its estimate: the last step's
time, or half the one before when that is longer: steps of one level take alike, and a short one
after a long one does not make the next long one look short), or right after a refresh ended (a
step longer than the gap cannot wait for a larger one), or when the due refresh is late (a
collector that follows, or a refresh that stopped: no starving). A refresh due while a step runs
waits for that step, not for the steps after it.

One per process, held by the movers refresher and the background work; nothing is shared with
other processes (a ``movers backfill`` command's rollups run beside whatever runs elsewhere).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

POLL = 0.05
"""Seconds between two looks of a waiting step."""
LATE = 2.0
"""Seconds past its due time after which a refresh is no longer waited for."""


class Turns:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._wanted = 0
        self._refreshes = 0
        """Refreshes ended so far."""
        self._due: float | None = None
        """The loop time the next refresh is due at (None: no refresh has run here)."""
        self._step = 0.0
        """What the next step is expected to take: the last step's seconds, or half the
        estimate before it when that is more."""

    @asynccontextmanager
    async def refresh(self, every: float) -> AsyncIterator[float]:
        """A refresh's turn, the next due ``every`` seconds after this one asks; yields the
        seconds it waited (for a step in flight)."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        self._due = asked + every
        self._wanted += 1
        try:
            async with self._lock:
                yield loop.time() - asked
        finally:
            self._wanted -= 1
            self._refreshes += 1

    @asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        """A background step's turn: when no refresh runs or is wanted, and the step fits
        before the next is due (or cannot fit in any gap, or the refresh is late)."""
        loop = asyncio.get_running_loop()
        seen = self._refreshes
        while True:
            await self._lock.acquire()
            if self._ready(loop.time(), seen):
                break
            self._lock.release()
            await asyncio.sleep(POLL)
        started = loop.time()
        try:
            yield
        finally:
            self._step = max(loop.time() - started, self._step / 2)
            self._lock.release()

    def _ready(self, now: float, seen: int) -> bool:
        if self._wanted:
            return False
        due = self._due
        return due is None or now + self._step <= due or self._refreshes != seen or now > due + LATE
