"""What every venue's jobs share: counting and logging bad records, and running a job so that a
failure is counted and logged on the transition, never taking the scheduler down."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Sequence,
    Sized,
)
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

import msgspec
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.errors import ExporterError, ParseError
from exporter.model import Venue, shard_of

log = structlog.get_logger("exporter")
R = TypeVar("R")
T = TypeVar("T")
P = TypeVar("P")


class Rejects(Collector):
    """Malformed records: counted by ``(venue, kind)``, logged once per kind with a sample."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, error: ParseError, sample: object) -> None:
        if isinstance(sample, msgspec.Raw):  # a record left as bytes by its page's decoder
            sample = bytes(sample)
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

    def each(self, parse: Callable[..., T], raws: Iterable[R], *args: Any) -> Iterator[T]:
        """``parse(raw, *args)`` of each raw record; a malformed one is counted, logged once per
        kind and skipped (never the page)."""
        for raw in raws:
            try:
                yield parse(raw, *args)
            except ParseError as error:
                self.add(error, raw)

    def collect(self) -> Iterator[Metric]:
        parse = CounterMetricFamily(
            "movers_parse_errors",
            "Malformed venue records skipped, by venue and record kind.",
            labels=["venue", "kind"],
        )
        for (venue, kind), count in sorted(self.counts.items()):
            parse.add_metric([venue, kind], count)
        yield parse


async def cursor_pages(
    fetch: Callable[[str], Awaitable[tuple[P, datetime]]],
    cursor_of: Callable[[P], str | None],
    *,
    limit: int | None = None,
) -> AsyncIterator[tuple[P, datetime]]:
    """Each page of a cursor-paged listing with its receive time, from the first (cursor ``""``)
    until a page names no next cursor, or after ``limit`` pages."""
    cursor, pages = "", 0
    while True:
        page, received = await fetch(cursor)
        yield page, received
        pages += 1
        cursor = cursor_of(page) or ""
        if not cursor or (limit is not None and pages >= limit):
            return


def hot_set(volumes: dict[str, float], size: int, always: set[str]) -> list[str]:
    """The ``size`` keys with the most 24 h volume, then the watched ones not among them."""
    hot = sorted(volumes, key=lambda k: volumes[k], reverse=True)[:size]
    chosen = set(hot)
    return hot + sorted(k for k in always if k not in chosen)


@dataclass(frozen=True, slots=True)
class Share:
    """One shard's part of a venue's whole open listing (several shards): the slice of it by end
    time its price sweep reads, and every shard's hot set (their owners poll and stream those,
    so a slice sweep skips them)."""

    start: int | None
    """The slice's first end time (unix seconds, on the hour; None: unbounded)."""
    stop: int | None
    """The next slice's first end time (exclusive; None: unbounded)."""
    hot_anywhere: frozenset[str]


def share_out(
    venue: Venue,
    listed: dict[str, float],
    ends: list[int],
    shard: tuple[int, int],
    hot_size: int,
    always: set[str],
) -> Share:
    """Shard ``(index, count)``'s share of the open listing ``listed`` (id -> 24 h volume) whose
    end times are ``ends`` (unix seconds). Every shard computes the same boundaries from the same
    listing: quantiles of the end times rounded down to the hour (so that a listing a little
    older or newer gives the same slices), and the same hot sets (each shard's top ``hot_size``
    by volume plus the ``always`` ones it owns, as each would choose its own)."""
    index, count = shard
    ends = sorted(ends)
    cuts = [ends[len(ends) * k // count] // 3600 * 3600 for k in range(1, count)] if ends else []
    owned: list[dict[str, float]] = [{} for _ in range(count)]
    for key, volume in listed.items():  # one hash a market (150,000 every cycle)
        owned[shard_of(venue, key, count)][key] = volume
    hot: set[str] = set()
    for theirs in owned:
        hot.update(hot_set(theirs, hot_size, always & theirs.keys()))
    return Share(
        cuts[index - 1] if 0 < index <= len(cuts) else None,
        cuts[index] if index < len(cuts) else None,
        frozenset(hot),
    )


@dataclass
class JobState:
    runs: Counter[str] = field(default_factory=Counter)
    """Outcomes by ``ok`` / ``failed``."""
    failing: bool = False
    last_success: float | None = None
    """Unix time of the last successful run."""
    last_duration: float | None = None
    last_error: str | None = None


class Jobs(Collector):
    """Runs named jobs: counts outcomes, logs when a job starts failing and when it recovers."""

    def __init__(self) -> None:
        self.states: dict[str, JobState] = {}

    async def run(self, name: str, job: Callable[[], Awaitable[Any]]) -> bool:
        state = self.states.setdefault(name, JobState())
        started = time.monotonic()
        try:
            result = await job()
        except (ExporterError, TimeoutError) as exc:
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

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "movers_job_runs", "Job runs by outcome (ok, failed).", labels=["job_name", "outcome"]
        )
        last = GaugeMetricFamily(
            "movers_job_last_success_timestamp_seconds",
            "When the job last succeeded.",
            labels=["job_name"],
        )
        duration = GaugeMetricFamily(
            "movers_job_last_duration_seconds",
            "How long the job's last successful run took.",
            labels=["job_name"],
        )
        failing = GaugeMetricFamily(
            "movers_job_failing", "1 while the job's latest run failed.", labels=["job_name"]
        )
        discovery = GaugeMetricFamily(
            "movers_last_discovery_timestamp_seconds",
            "When the venue's discovery last completed.",
            labels=["venue"],
        )
        for job, state in sorted(self.states.items()):
            for outcome, count in sorted(state.runs.items()):
                runs.add_metric([job, outcome], count)
            if state.last_success is not None:
                last.add_metric([job], state.last_success)
                if job.endswith("_discovery"):
                    discovery.add_metric([job.removesuffix("_discovery")], state.last_success)
            if state.last_duration is not None:
                duration.add_metric([job], state.last_duration)
            failing.add_metric([job], 1.0 if state.failing else 0.0)
        yield from (runs, last, duration, failing, discovery)

    def recent(self, within: float) -> list[str]:
        """The jobs that succeeded within the last ``within`` seconds."""
        now = time.time()
        return sorted(
            job
            for job, state in self.states.items()
            if state.last_success is not None and now - state.last_success < within
        )


class VenueJobs(Protocol):
    """What the venue collector reads of a venue's jobs."""

    venue: str
    last_sweep_seconds: float | None

    @property
    def hot(self) -> Sized: ...


class VenueCollector(Collector):
    """The venues' sweep durations and hot-set sizes."""

    def __init__(self, venues: Sequence[VenueJobs]) -> None:
        self.venues = venues

    def collect(self) -> Iterator[Metric]:
        sweep = GaugeMetricFamily(
            "movers_sweep_duration_seconds",
            "Duration of the venue's last full price sweep.",
            labels=["venue"],
        )
        hot = GaugeMetricFamily("movers_hot_markets", "Markets in the hot set.", labels=["venue"])
        for jobs in self.venues:
            if jobs.last_sweep_seconds is not None:
                sweep.add_metric([jobs.venue], jobs.last_sweep_seconds)
            hot.add_metric([jobs.venue], len(jobs.hot))
        yield from (sweep, hot)
