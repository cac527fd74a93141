"""What every venue's jobs share: counting and logging bad records, and running a job so that a
failure is counted and logged on the transition, never taking the scheduler down."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from psycopg_pool import PoolTimeout

from exporter.errors import ExporterError, ParseError

log = structlog.get_logger("exporter")


class Rejects:
    """Malformed records: counted by ``(venue, kind)``, logged once per kind with a sample."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, error: ParseError, sample: object) -> None:
        key = (error.venue, error.kind)
        if key not in self.counts:
            log.warning(
                "malformed record skipped",
                venue=error.venue,
                kind=error.kind,
                error=str(error),
                sample=repr(sample)[:300],
                note="logged once per kind; later ones are only counted",
            )
        self.counts[key] += 1


def hot_set(volumes: dict[str, float], size: int, always: set[str]) -> list[str]:
    """The ``size`` keys with the most 24 h volume, then the watched ones not among them."""
    hot = sorted(volumes, key=lambda k: volumes[k], reverse=True)[:size]
    chosen = set(hot)
    return hot + sorted(k for k in always if k not in chosen)


@dataclass
class JobState:
    runs: Counter[str] = field(default_factory=Counter)
    """Outcomes by ``ok`` / ``failed``."""
    failing: bool = False
    last_success: float | None = None
    """Unix time of the last successful run."""
    last_duration: float | None = None
    last_error: str | None = None


class Jobs:
    """Runs named jobs: counts outcomes, logs when a job starts failing and when it recovers."""

    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}

    async def run(self, name: str, job: Callable[[], Awaitable[Any]]) -> bool:
        state = self.states.setdefault(name, JobState())
        started = time.monotonic()
        try:
            result = await job()
        except (ExporterError, psycopg.Error, PoolTimeout, TimeoutError) as exc:
            state.runs["failed"] += 1
            state.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if not state.failing:
                log.warning("job failing", job=name, error=state.last_error)
            state.failing = True
            return False
        state.runs["ok"] += 1
        state.last_duration = time.monotonic() - started
        state.last_success = time.time()
        if state.failing:
            log.info("job recovered", job=name)
        state.failing = False
        log.debug("job done", job=name, seconds=round(state.last_duration, 3), result=result)
        return True
