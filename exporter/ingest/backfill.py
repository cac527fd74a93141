"""The history backfill: the venues' own price history written into ``snapshots`` before the
first live row of each outcome, so movers, candles and context exist from the first minutes.

A pass takes the outcomes to fill at each resolution (``fidelity``): it reads their cursors and
first live rows, skips those already covered, cuts the rest into the venue's requests
(:class:`HistorySource`), runs them a few at a time on the rate budget live requests leave, and
stores each answer with its cursors in one transaction. A window the venue finds too long is
split in two and asked again; an outcome it does not know is noted and not asked again; a
request that fails after its retries leaves its cursors where they were, for the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import BackfillConfig, Settings, format_duration
from exporter.errors import StorageError, VenueError, VenueRejected
from exporter.ingest.hot import HotSet
from exporter.model import Snapshot, Venue
from exporter.storage.checks import check_snapshot
from exporter.storage.history import Covered, Cursor, HistoryStore

log = structlog.get_logger("exporter.backfill")

UNKNOWN = "unknown"
"""Cursor note: the venue does not know the outcome (not asked again by later passes)."""
EMPTY = "empty"
"""Cursor note: the venue knows the outcome but had no point in the range."""


@dataclass(frozen=True, slots=True)
class Target:
    """An outcome to fill: its id, what its venue calls it (Polymarket token, Kalshi ticker),
    and whether its market still trades (Kalshi serves settled ones from its archive)."""

    outcome_id: str
    asset: str
    trading: bool = True


@dataclass(frozen=True, slots=True)
class Request:
    """One history request: these targets from ``start`` to ``end`` (unix seconds)."""

    targets: tuple[Target, ...]
    start: int
    end: int
    fidelity: timedelta


@dataclass(slots=True)
class Answer:
    """Each outcome's points as the venue sent them (parsed by :meth:`HistorySource.parse`);
    outcomes the venue did not know."""

    points: dict[str, list[msgspec.Raw]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)


class HistorySource(Protocol):
    """A venue's history endpoints."""

    venue: Venue

    def requests(
        self, targets: Sequence[Target], start: int, end: int, fidelity: timedelta
    ) -> list[Request]:
        """The fewest requests that cover ``targets`` from ``start`` to ``end`` within the
        venue's limits (window, batch size, points per answer)."""
        ...

    async def fetch(self, request: Request) -> Answer:
        """Ask; raises :class:`VenueError`."""
        ...

    def parse(self, raws: list[msgspec.Raw], target: Target) -> list[Snapshot]:
        """A target's points as rows; a malformed one counted and skipped."""
        ...


def too_long(error: VenueRejected) -> bool:
    """The venue refused the request's size (a window or answer too large): split it."""
    text = str(error).lower()
    return error.status == 400 and ("too long" in text or "too many" in text)


@dataclass(slots=True)
class Tally:
    """One venue's backfill figures, for metrics and the progress bar."""

    queued: Counter[str] = field(default_factory=Counter)
    """Outcomes still to fill, by fidelity label."""
    done: Counter[str] = field(default_factory=Counter)
    """Outcomes filled (or noted) by the current pass, by fidelity label."""
    covered: Counter[str] = field(default_factory=Counter)
    """Outcomes found already covered when a pass planned, by fidelity label."""
    rows: int = 0
    duplicates: int = 0
    rejected: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    """Requests by result: ok, split (too long: asked again in halves), failed."""
    errors: Counter[str] = field(default_factory=Counter)
    """By kind: venue, storage, unknown_outcome."""
    last_error: float | None = None
    last_error_text: str = ""
    running: bool = False
    started: float = 0.0
    planned: int = 0
    """Requests the current pass planned."""
    sent: int = 0
    """Of them, answered (or failed) so far."""

    def eta(self, now: float) -> float:
        """Seconds the current pass needs still, at its pace so far."""
        if not self.running or self.sent == 0 or self.planned <= self.sent:
            return 0.0
        pace = (now - self.started) / self.sent
        return pace * (self.planned - self.sent)


class Allowance:
    """Points held at once by the answers being asked, parsed and written: a request waits
    until its estimate fits (one larger than the whole allowance goes alone), first come first
    served. Without it, sixteen answers of a week of minute points for twenty tokens each
    (3.2 M points, over a gigabyte as rows) could wait together for the database."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @contextlib.asynccontextmanager
    async def hold(self, points: int) -> AsyncIterator[None]:
        if self._waiting or not self._fits(points):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((points, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release(points)  # granted, then cancelled before it ran
                else:
                    self._waiting.remove((points, waiter))
                    self._wake()
                raise
        else:
            self._take(points)
        try:
            yield
        finally:
            self._release(points)

    def _fits(self, points: int) -> bool:
        return self.used == 0 or self.used + points <= self.limit

    def _take(self, points: int) -> None:
        self.used += points
        self.peak = max(self.peak, self.used)

    def _release(self, points: int) -> None:
        self.used -= points
        self._wake()

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            points, waiter = self._waiting.popleft()
            self._take(points)
            waiter.set_result(None)


def expected_points(request: Request) -> int:
    """The most points an answer to ``request`` can give once gaps are filled: one a
    ``fidelity`` for each target over the window (the venues give at most that many)."""
    step = max(1, int(request.fidelity.total_seconds()))
    return len(request.targets) * (math.ceil((request.end - request.start) / step) + 1)


def label(fidelity: timedelta) -> str:
    return format_duration(fidelity)


class Backfill:
    """One venue's history backfill."""

    def __init__(
        self,
        source: HistorySource,
        store: HistoryStore,
        config: BackfillConfig,
        *,
        retention: timedelta | None,
        heartbeat: timedelta,
        batch_rows: int = 5000,
        on_progress: Callable[[Tally], None] | None = None,
    ) -> None:
        self.source = source
        self.venue = source.venue
        self.store = store
        self.config = config
        self.retention = retention
        self.heartbeat = heartbeat
        self.batch_rows = batch_rows
        """Rows a transaction writes at most (more only for one outcome's own points)."""
        self.tally = Tally()
        self.on_progress = on_progress
        self.filled: dict[timedelta, set[str]] = {}
        """Outcomes known covered, by fidelity: later passes do not look them up again."""
        self._logged: set[str] = set()
        self._unknown: set[str] = set()
        self.allowance = Allowance(config.points_held)

    @classmethod
    def from_settings(
        cls,
        source: HistorySource,
        store: HistoryStore,
        settings: Settings,
        on_progress: Callable[[Tally], None] | None = None,
    ) -> Backfill:
        return cls(
            source, store, settings.backfill,
            retention=settings.storage.retention.snapshots,
            heartbeat=settings.storage.heartbeat,
            batch_rows=settings.database.write_batch_rows,
            on_progress=on_progress,
        )  # fmt: skip

    async def run(
        self,
        plan: Sequence[tuple[timedelta, Sequence[Target]]],
        *,
        since: timedelta | None = None,
        now: datetime | None = None,
        live_only: bool = False,
    ) -> Tally:
        """One pass over ``plan`` (resolution, targets), in order. ``live_only`` fills only
        outcomes that already have a live row (the service: what lies after it is live);
        otherwise up to now where there is none (the command)."""
        moment = now or datetime.now(UTC)
        lo = moment - (since or self.config.since)
        if self.retention is not None:
            # Nothing older than retention keeps: the oldest point written is inside it.
            lo = max(lo, moment - self.retention + max(f for f, _ in plan))
        work: list[tuple[timedelta, list[tuple[Target, datetime, datetime]]]] = []
        tally = self.tally
        tally.queued.clear()
        tally.done.clear()
        for fidelity, targets in plan:
            known = self.filled.setdefault(fidelity, set())
            fresh = [t for t in targets if t.outcome_id not in known]
            spans, covered = await self._spans(fresh, fidelity, lo, moment, live_only)
            known.update(covered)
            tally.covered[label(fidelity)] = len(known)
            tally.queued[label(fidelity)] += len(spans)  # hot and others may share one
            work.append((fidelity, spans))
        requests = [
            (request, bounds)
            for fidelity, spans in work
            for request, bounds in self._requests(spans, fidelity)
        ]
        tally.planned, tally.sent = len(requests), 0
        tally.started = time.monotonic()
        tally.running = bool(requests)
        self._report()
        oldest: datetime | None = None
        newest: datetime | None = None
        asking = asyncio.Semaphore(self.config.concurrency)
        # An answer waiting for the database does not hold a request slot: the next request
        # leaves on the budget meanwhile (the write turn is shared with the live jobs and the
        # other venue). Two more answers may wait, so memory stays bounded.
        held = asyncio.Semaphore(self.config.concurrency + HELD_EXTRA)
        allowance = self.allowance

        async def one(request: Request, bounds: dict[str, tuple[datetime, datetime]]) -> None:
            nonlocal oldest, newest
            async with held, allowance.hold(expected_points(request)):
                async with asking:
                    answers = await self._ask(request)
                written = []
                for asked, answer in answers:
                    written += await self._store(asked, answer, bounds)
            tally.sent += 1
            for lo_, hi_ in written:
                oldest = lo_ if oldest is None else min(oldest, lo_)
                newest = hi_ if newest is None else max(newest, hi_)
            self._report()

        try:
            async with asyncio.TaskGroup() as group:
                for request, bounds in requests:
                    group.create_task(one(request, bounds))
        finally:
            tally.running = False
            self._report()
        if oldest is not None and newest is not None:
            await self.store.refresh_aggregates(oldest, newest)
        return tally

    async def _spans(
        self,
        targets: list[Target],
        fidelity: timedelta,
        lo: datetime,
        now: datetime,
        live_only: bool,
    ) -> tuple[list[tuple[Target, datetime, datetime]], list[str]]:
        """``(target, from, until)`` of each target still to fill: from where its cursor
        stopped (or ``lo``), until its first live row (or now); and the outcomes already
        covered."""
        if not targets:
            return [], []
        ids = [t.outcome_id for t in targets]
        cursors: dict[str, Cursor] = {}
        first_live: dict[str, datetime] = {}
        for i in range(0, len(ids), LOOKUP_BATCH):
            chunk = ids[i : i + LOOKUP_BATCH]
            cursors |= await self.store.cursors(fidelity, chunk)
            first_live |= await self.store.first_live(chunk, lo)
        spans, covered = [], []
        for target in targets:
            live = first_live.get(target.outcome_id)
            if live is None and live_only:
                continue  # not polled yet: the next pass, once it is
            until = min(live or now, now)
            cursor = cursors.get(target.outcome_id)
            start = lo
            if cursor is not None:
                if cursor.note == UNKNOWN:
                    covered.append(target.outcome_id)
                    continue
                if cursor.covered_from <= lo + fidelity and cursor.covered_to > lo:
                    start = max(lo, cursor.covered_to)
            if until - start < fidelity:
                if live is not None:
                    covered.append(target.outcome_id)  # what follows is live
                continue
            spans.append((target, start, until))
        return spans, covered

    def _requests(
        self, spans: list[tuple[Target, datetime, datetime]], fidelity: timedelta
    ) -> Iterator[tuple[Request, dict[str, tuple[datetime, datetime]]]]:
        """Requests for targets grouped by where they start (a fresh pass: all at ``lo``)."""
        groups: dict[datetime, list[tuple[Target, datetime, datetime]]] = {}
        for span in spans:
            groups.setdefault(span[1], []).append(span)
        for start, group in groups.items():
            end = max(until for _, _, until in group)
            bounds = {t.outcome_id: (s, u) for t, s, u in group}
            for request in self.source.requests(
                [t for t, _, _ in group], _unix(start), math.ceil(end.timestamp()), fidelity
            ):
                yield request, {t.outcome_id: bounds[t.outcome_id] for t in request.targets}

    async def _ask(self, request: Request) -> list[tuple[Request, Answer]]:
        """One request's answers (in halves when the venue finds it too long); none when it
        failed."""
        tally = self.tally
        try:
            answer = await self.source.fetch(request)
        except VenueRejected as error:
            if too_long(error) and _divisible(request):
                tally.requests["split"] += 1
                answers = []
                for half in _halves(request):
                    answers += await self._ask(half)
                return answers
            self._failed(error)
            return []
        except VenueError as error:
            self._failed(error)
            return []
        tally.requests["ok"] += 1
        return [(request, answer)]

    async def _store(
        self, request: Request, answer: Answer, bounds: dict[str, tuple[datetime, datetime]]
    ) -> list[tuple[datetime, datetime]]:
        """One answer stored with its cursors; the time ranges written."""
        tally = self.tally
        # Parsing thousands of points holds the interpreter for a while: off the event loop, so
        # the live requests granted meanwhile leave when they were granted.
        rows, covered, rejected = await asyncio.to_thread(self._prepare, request, answer, bounds)
        answer.points.clear()  # the venue's bytes are rows now: not held while the rows wait
        tally.rejected += rejected
        for c in covered:
            if c.note == UNKNOWN and c.outcome_id not in self._unknown:
                self._unknown.add(c.outcome_id)  # counted once, whatever its windows
                self._note_once("unknown_outcome", f"{c.outcome_id}: the venue does not know it")
                tally.errors["unknown_outcome"] += 1
        first: datetime | None = None
        last: datetime | None = None
        for chunk_rows, chunk_covered in _chunks(rows, covered, self.batch_rows):
            try:
                written = await self.store.store(chunk_rows, chunk_covered, request.fidelity)
            except StorageError as error:
                tally.errors["storage"] += 1
                self._error(error)
                break
            if chunk_rows:
                early = min(r.time for r in chunk_rows)
                late = max(r.time for r in chunk_rows)
                first = early if first is None else min(first, early)
                last = late if last is None else max(last, late)
            tally.rows += written
            tally.duplicates += len(chunk_rows) - written
            for c in chunk_covered:
                if c.end >= bounds[c.outcome_id][1] or c.note == UNKNOWN:
                    tally.done[label(request.fidelity)] += 1
                    self.filled.setdefault(request.fidelity, set()).add(c.outcome_id)
        if first is None or last is None:
            return []
        return [(first, last)]

    def _prepare(
        self, request: Request, answer: Answer, bounds: dict[str, tuple[datetime, datetime]]
    ) -> tuple[list[Snapshot], list[Covered], int]:
        """The rows to write and the cursors to move for one answer; and the points refused."""
        rows: list[Snapshot] = []
        covered: list[Covered] = []
        rejected = 0
        window_start = datetime.fromtimestamp(request.start, UTC)
        window_end = datetime.fromtimestamp(request.end, UTC)
        every = max(self.heartbeat, request.fidelity)
        for target in request.targets:
            lo, until = bounds[target.outcome_id]
            if target.outcome_id in answer.unknown:
                covered.append(Covered(target.outcome_id, lo, lo, 0, UNKNOWN))
                continue
            parsed = self.source.parse(answer.points.get(target.outcome_id, []), target)
            points = [p for p in parsed if lo <= p.time < until]
            mine = fill_gaps(deduplicated(points), every)
            good = [p for p in mine if check_snapshot(p) is None]
            rejected += len(mine) - len(good)
            rows += good
            covered.append(
                Covered(target.outcome_id, max(lo, window_start), min(until, window_end),
                        len(good), None if good else EMPTY)
            )  # fmt: skip
        return rows, covered, rejected

    def _failed(self, error: VenueError) -> None:
        self.tally.requests["failed"] += 1
        self.tally.errors["venue"] += 1
        self._error(error)

    def _error(self, error: Exception) -> None:
        self.tally.last_error = time.time()
        self.tally.last_error_text = str(error)[:300]
        self._note_once(type(error).__name__, str(error))

    def _note_once(self, kind: str, message: str) -> None:
        if kind in self._logged:
            return
        self._logged.add(kind)
        log.warning(
            "backfill problem",
            venue=self.venue.value,
            kind=kind,
            error=message[:300],
            note="logged once per kind; later ones are counted (movers_backfill_errors_total)",
        )

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.tally)


def plan_of(
    hot: HotSet, config: BackfillConfig, hot_limit: int
) -> list[tuple[timedelta, list[Target]]]:
    """What the service fills: the hot set's and watchlist's outcomes (up to ``hot_limit``, in
    hot-set order) at ``hot_fidelity``, every other open outcome at ``others_fidelity``."""
    prefix = f"{hot.venue.value}:"
    chosen = hot.assets(hot_limit)
    plan = [(config.hot_fidelity, [Target(prefix + a, a) for a in chosen])]
    if config.others_fidelity is not None:
        skip = set(chosen)
        others = [a for k in hot.known.values() for a in k.assets if a not in skip]
        plan.append((config.others_fidelity, [Target(prefix + a, a) for a in others]))
    return plan


HELD_EXTRA = 2
"""Answers a pass may hold beyond those being asked: waiting for the database's write turn."""

LOOKUP_BATCH = 20_000
"""Outcomes whose cursors and first live rows one statement looks up."""


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _chunks(
    rows: list[Snapshot], covered: list[Covered], size: int
) -> Iterator[tuple[list[Snapshot], list[Covered]]]:
    """An answer's rows and cursors in transactions of about ``size`` rows, each outcome's
    whole in one (rows are in target order, as :meth:`Backfill._prepare` builds them): short
    transactions, so the backfill never holds a connection long."""
    start = 0
    chunk: list[Covered] = []
    count = 0
    for c in covered:
        chunk.append(c)
        count += c.points
        if count >= size:
            yield rows[start : start + count], chunk
            start, chunk, count = start + count, [], 0
    if chunk:
        yield rows[start : start + count], chunk


def _divisible(request: Request) -> bool:
    return len(request.targets) > 1 or (
        request.end - request.start >= 2 * request.fidelity.total_seconds()
    )


def _halves(request: Request) -> list[Request]:
    """Two requests asking half as much: half the targets, or half the window."""
    if len(request.targets) > 1:
        middle = len(request.targets) // 2
        return [
            Request(request.targets[:middle], request.start, request.end, request.fidelity),
            Request(request.targets[middle:], request.start, request.end, request.fidelity),
        ]
    step = round(request.fidelity.total_seconds())
    middle = request.start + (request.end - request.start) // 2 // step * step
    return [
        Request(request.targets, request.start, middle, request.fidelity),
        Request(request.targets, middle, request.end, request.fidelity),
    ]


def deduplicated(points: list[Snapshot]) -> list[Snapshot]:
    """In time order, one point per time (the last the venue sent)."""
    by_time = {p.time: p for p in points}
    return [by_time[t] for t in sorted(by_time)]


def fill_gaps(points: list[Snapshot], heartbeat: timedelta) -> list[Snapshot]:
    """Sparse history (a venue leaves out periods where nothing changed) as live rows are
    stored: an unchanged price is repeated every ``heartbeat`` (the storage heartbeat, or the
    history's resolution when coarser), so "unchanged" differs from "missing" for the movers'
    staleness."""
    filled: list[Snapshot] = []
    for point in points:
        if filled:
            previous = filled[-1]
            at = previous.time + heartbeat
            while at < point.time:
                filled.append(
                    Snapshot(time=at, outcome_id=previous.outcome_id, price=previous.price,
                             bid=previous.bid, ask=previous.ask, last_trade=previous.last_trade)
                )  # fmt: skip
                previous = filled[-1]
                at = previous.time + heartbeat
        filled.append(point)
    return filled


class BackfillCollector(Collector):
    """The backfills' progress and results."""

    def __init__(self, backfills: Sequence[Backfill]) -> None:
        self.backfills = backfills

    def collect(self) -> Iterator[Metric]:
        outcomes = GaugeMetricFamily(
            "movers_backfill_outcomes",
            "Outcomes of the current (or last) backfill pass by state: queued (still to fill), "
            "done (filled by the pass), covered (already filled when it planned); by fidelity.",
            labels=["venue", "fidelity", "state"],
        )
        rows = CounterMetricFamily(
            "movers_backfill_rows",
            "History points offered to the database: written, duplicate (a row was there), "
            "rejected (out of range).",
            labels=["venue", "outcome"],
        )
        requests = CounterMetricFamily(
            "movers_backfill_requests",
            "History requests by result: ok, split (too long: asked again in halves), failed.",
            labels=["venue", "result"],
        )
        errors = CounterMetricFamily(
            "movers_backfill_errors",
            "Backfill problems by kind: venue (a request failed after retries), storage, "
            "unknown_outcome (the venue does not know it).",
            labels=["venue", "kind"],
        )
        eta = GaugeMetricFamily(
            "movers_backfill_eta_seconds",
            "Seconds the running backfill pass needs still, at its pace so far (0 when idle).",
            labels=["venue"],
        )
        running = GaugeMetricFamily(
            "movers_backfill_running", "1 while a backfill pass runs.", labels=["venue"]
        )
        last_error = GaugeMetricFamily(
            "movers_backfill_last_error_timestamp_seconds",
            "When the backfill last failed a request or a write (the error is logged).",
            labels=["venue"],
        )
        now = time.monotonic()
        for backfill in self.backfills:
            venue, tally = backfill.venue.value, backfill.tally
            fidelities = sorted(set(tally.queued) | set(tally.done) | set(tally.covered))
            for fidelity in fidelities:
                for state, counts in (("queued", tally.queued), ("done", tally.done),
                                      ("covered", tally.covered)):  # fmt: skip
                    value = counts[fidelity]
                    if state == "queued":
                        value = max(0, value - tally.done[fidelity])
                    outcomes.add_metric([venue, fidelity, state], value)
            rows.add_metric([venue, "written"], tally.rows)
            rows.add_metric([venue, "duplicate"], tally.duplicates)
            rows.add_metric([venue, "rejected"], tally.rejected)
            for result in ("ok", "split", "failed"):
                requests.add_metric([venue, result], tally.requests[result])
            for kind in ("venue", "storage", "unknown_outcome"):
                errors.add_metric([venue, kind], tally.errors[kind])
            eta.add_metric([venue], tally.eta(now))
            running.add_metric([venue], 1.0 if tally.running else 0.0)
            if tally.last_error is not None:
                last_error.add_metric([venue], tally.last_error)
        yield from (outcomes, rows, requests, errors, eta, running, last_error)
