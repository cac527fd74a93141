"""Simulator time: real time scaled by a speed factor, or a clock a test moves by hand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Seconds of simulated time since the simulator started, and the start as a datetime."""

    def __init__(self, start: datetime | None = None) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        self.start = start or now
        if self.start.tzinfo is None:
            raise ValueError("the simulator's start time must be timezone-aware")

    def elapsed(self) -> float:
        raise NotImplementedError

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed())


class RealClock(Clock):
    """Follows the wall clock, ``speed`` simulated seconds per real second (demos run fast)."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        super().__init__(start)
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.monotonic()

    def elapsed(self) -> float:
        return (time.monotonic() - self._origin) * self.speed


class ManualClock(Clock):
    """Stands still until :meth:`advance` is called: tests decide exactly when things happen."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__(start)
        self._elapsed = 0.0

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._elapsed += seconds

    def elapsed(self) -> float:
        return self._elapsed
