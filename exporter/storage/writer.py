"""The writer: bulk, idempotent inserts (one round trip per batch, binary parameters, no COPY).

Snapshots are stored change-only: a row is written when price, bid, ask or last trade changed for
that outcome, plus a heartbeat row at most every ``storage.heartbeat``. A bad row is rejected
alone and counted; it never aborts its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, LiteralString, NamedTuple, TypeVar

import psycopg
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from exporter.config import Settings
from exporter.errors import StorageUnavailable
from exporter.model import (
    Market,
    MarketStatus,
    Outcome,
    Snapshot,
    Trade,
    Venue,
    venue_of,
)
from exporter.storage.backlog import Backlog
from exporter.storage.changes import ChangeFilter
from exporter.storage.checks import check_market, check_outcome, check_snapshot, check_trade
from exporter.storage.database import Database, lent
from exporter.storage.migrate import Mode
from exporter.storage.rows import (
    BY_TIME,
    MARKET_UPSERT,
    NEWEST,
    OUTCOME_UPSERT,
    SNAPSHOT_INSERT,
    SNAPSHOT_INSERT_NOTING_LATE,
    TRADE_INSERT,
    Insert,
    snapshot_columns,
    snapshot_columns_with_range,
    trade_columns,
)
from exporter.timing import WRITE_BUCKETS, histogram

T = TypeVar("T")

log = structlog.get_logger("exporter.writer")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What became of one batch:
    ``written + duplicates + unchanged + sum(rejected) + buffered == sent``."""

    table: str
    written: int = 0
    duplicates: int = 0
    unchanged: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    buffered: int = 0
    """Rows held in memory while the database is unreachable, written when it is back."""

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


RETRY_AFTER = 5.0
"""While rows are held, seconds between attempts to reach the database again (writes in between
go straight to the backlog instead of waiting for a connection)."""


class Listed(NamedTuple):
    """An open market of the stored listing (:meth:`Writer.open_listing`)."""

    native_id: str
    volume_24h: float | None
    end_time: datetime | None
    event_id: str | None
    liquidity: float | None
    slug: str | None
    assets: list[str]
    """Its outcomes' native ids by position (Polymarket's tokens; Kalshi's ticker)."""


class Writer:
    """Writes records through a connection pool; one instance per process.

    While the database is unreachable, rows are held in a bounded :class:`Backlog` and written,
    in order, before anything newer once it answers again.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        mode: Mode,
        heartbeat: timedelta,
        *,
        batch_rows: int = 5000,
        concurrency: int = 1,
        backlog_rows: int = 500_000,
    ) -> None:
        self.pool = pool
        self.database = Database(pool)
        self.mode = mode
        self.batch_rows = batch_rows
        """Rows per statement; a bigger write is split into statements of this size."""
        self.concurrency = concurrency
        """Statements of one write in flight at once, each on its own pooled connection (the
        server parses and inserts one while the client encodes the next)."""
        self.changes = ChangeFilter(heartbeat)
        self.newest: dict[tuple[str, str], datetime] = {}
        """Newest committed row time by ``(table, venue)``: what ingest freshness is measured by."""
        self.totals: Counter[tuple[str, str, str]] = Counter()
        """Running counts by ``(table, venue, outcome)``: written, duplicate, unchanged,
        rejected:<reason>."""
        self._logged_refusals: set[tuple[str, str]] = set()
        self.backlog = Backlog(backlog_rows)
        self.latency = histogram(
            "movers_database_write_duration_seconds",
            "Latency of one insert statement (up to write_batch_rows rows), by table.",
            ["table"],
            WRITE_BUCKETS,
        )
        """Seconds per insert statement, by table."""
        self.stored_listeners: list[Callable[[datetime], None]] = []
        """Told the oldest time among the snapshot rows of each committed statement, held rows
        written after an outage included (the movers refresh reads from there)."""
        self.snapshot_listeners: list[Callable[[Sequence[Snapshot]], None]] = []
        """Told every valid snapshot handed to :meth:`write_snapshots` (unchanged ones too),
        before it is stored: the signals follow the books."""
        self.trade_listeners: list[Callable[[Sequence[Trade]], None]] = []
        """Told every valid trade handed to :meth:`write_trades`, before it is stored (or held
        through an outage): the signals see a whale at once, database or not."""
        self._flushing = asyncio.Lock()
        self._retry_at = 0.0
        self._direct: psycopg.AsyncConnection[Any] | None = None
        self._duplicates_seen: set[str] = set()
        """Tables whose last batch held a duplicate: their next one goes ``ON CONFLICT``."""

    @classmethod
    def from_settings(
        cls, pool: AsyncConnectionPool[Any], mode: Mode, settings: Settings
    ) -> Writer:
        return cls(
            pool,
            mode,
            settings.storage.heartbeat,
            batch_rows=settings.database.write_batch_rows,
            concurrency=settings.database.write_concurrency,
            backlog_rows=settings.database.outage_buffer_rows,
        )

    async def prime(self) -> int:
        """Load each outcome's newest row inside the heartbeat window, so a restart does not
        write a fresh row for every unchanged outcome. Returns the number of outcomes loaded."""
        query = """
            SELECT DISTINCT ON (outcome_id) outcome_id, time, price, bid, ask, last_trade
            FROM snapshots WHERE time > now() - %s::interval
            ORDER BY outcome_id, time DESC
        """
        async with self._connection() as conn:
            cur = await conn.execute(query, (self.changes.heartbeat,))
            rows = await cur.fetchall()
            await self._load_newest(conn)
        self.changes.remember(
            Snapshot(time=t, outcome_id=o, price=p, bid=b, ask=a, last_trade=lt)
            for o, t, p, b, a, lt in rows
        )
        return len(rows)

    async def write_snapshots(
        self, rows: Sequence[Snapshot], *, change_only: bool = True
    ) -> WriteResult:
        valid, rejected = _partition(rows, check_snapshot)
        for listener in self.snapshot_listeners:
            listener(valid)
        unchanged = stale = 0
        if change_only:
            valid, unchanged, stale = self.changes.select(valid)
        try:
            if not await self._ready():
                return self._hold("snapshots", valid, rejected, unchanged, stale)
            try:
                written, failed = await self._insert_snapshots(valid, self._stored_snapshots)
            except StorageUnavailable:
                self._retry_at = time.monotonic() + RETRY_AFTER
                return self._hold("snapshots", valid, rejected, unchanged, stale)
        finally:
            if change_only:
                self.changes.release(valid)
        rejected.update(failed.reasons)
        result = WriteResult(
            table="snapshots",
            written=written,
            duplicates=len(valid) - len(failed.rows) - written + stale,
            unchanged=unchanged,
            rejected=dict(rejected),
        )
        self._count(result, _venue_of(rows))
        return result

    async def write_trades(self, rows: Sequence[Trade]) -> WriteResult:
        valid, rejected = _partition(rows, check_trade)
        for listener in self.trade_listeners:
            listener(valid)
        if not await self._ready():
            return self._hold("trades", valid, rejected)
        try:
            written, failed = await self._insert(
                "trades", TRADE_INSERT, valid, trade_columns, self._stored_trades
            )
        except StorageUnavailable:
            self._retry_at = time.monotonic() + RETRY_AFTER
            return self._hold("trades", valid, rejected)
        rejected.update(failed.reasons)
        result = WriteResult(
            table="trades",
            written=written,
            duplicates=len(valid) - len(failed.rows) - written,
            rejected=dict(rejected),
        )
        self._count(result, _venue_of(rows))
        return result

    async def flush(self) -> int:
        """Write the held rows, oldest first; returns how many were written. Raises
        :class:`StorageUnavailable` (keeping what is left) when the database is still away."""
        written = 0
        async with self._flushing:
            while (batch := self.backlog.peek()) is not None:
                table, rows = batch
                if table == "snapshots":
                    count, failed = await self._insert_snapshots(rows, self._stored_snapshots)
                else:
                    count, failed = await self._insert(
                        "trades", TRADE_INSERT, rows, trade_columns, self._stored_trades
                    )
                self.backlog.pop()
                self._count(
                    WriteResult(
                        table,
                        written=count,
                        duplicates=len(rows) - len(failed.rows) - count,
                        rejected=dict(failed.reasons),
                    ),
                    _venue_of(rows),
                )
                written += count
            self._retry_at = 0.0
        return written

    async def flush_through(
        self, connect: Callable[[], Awaitable[psycopg.AsyncConnection[Any]]]
    ) -> int:
        """:meth:`flush` over a connection of its own, one statement at a time: at shutdown,
        when the pool may still be backing off from an outage that just ended. ``connect``
        raises :class:`StorageUnavailable` when the database is away."""
        if not len(self.backlog):
            return 0
        async with await connect() as conn:
            self._direct = conn
            try:
                return await self.flush()
            finally:
                self._direct = None

    def retry_now(self) -> None:
        """Try the database at the next write instead of after the retry pause (a drill, or
        whoever knows it is back)."""
        self._retry_at = 0.0

    def upserting(self) -> frozenset[str]:
        """Tables whose batches go as ``ON CONFLICT`` inserts now (since one met a duplicate,
        until one comes back clean)."""
        return frozenset(self._duplicates_seen)

    async def _ready(self) -> bool:
        """Whether to try the database now: yes when nothing is held; otherwise once the retry
        pause is over, and only if the held rows could be written first."""
        if not self.backlog.peek():
            return True
        if time.monotonic() < self._retry_at:
            return False
        try:
            await self.flush()
        except StorageUnavailable:
            self._retry_at = time.monotonic() + RETRY_AFTER
            return False
        return True

    def _hold(
        self,
        table: str,
        rows: Sequence[Snapshot] | Sequence[Trade],
        rejected: Counter[str],
        unchanged: int = 0,
        stale: int = 0,
    ) -> WriteResult:
        dropped = self.backlog.add(table, rows)
        if table == "snapshots":
            snapshots = [r for r in rows if isinstance(r, Snapshot)]
            self.changes.remember(snapshots)
            # A dropped row was never stored: the next observation must be written.
            self.changes.forget(r.outcome_id for r in dropped if isinstance(r, Snapshot))
        result = WriteResult(
            table=table,
            duplicates=stale,
            unchanged=unchanged,
            rejected=dict(rejected),
            buffered=len(rows),
        )
        self._count(result, _venue_of(rows))
        return result

    async def _insert_snapshots(
        self,
        rows: Sequence[Snapshot],
        stored: Callable[[Sequence[Snapshot]], None] | None = None,
    ) -> tuple[int, _Failures]:
        if self.mode is Mode.TIMESCALE:
            return await self._insert("snapshots", SNAPSHOT_INSERT, rows, snapshot_columns, stored)
        return await self._insert(
            "snapshots", SNAPSHOT_INSERT_NOTING_LATE, rows, snapshot_columns_with_range, stored
        )

    def _stored_snapshots(self, rows: Sequence[Snapshot]) -> None:
        """A statement's stored rows (new or already there): change-only storage and ingest
        freshness learn of them while later statements are still in flight."""
        self.changes.remember(rows)
        self._note_newest("snapshots", rows)
        if rows and self.stored_listeners:
            oldest = min(map(BY_TIME, rows))
            for listener in self.stored_listeners:
                listener(oldest)

    def _stored_trades(self, rows: Sequence[Trade]) -> None:
        self._note_newest("trades", rows)

    async def upsert_markets(self, markets: Sequence[Market]) -> int:
        """Upsert a page of markets; a market refused (by its domain or by the database) is
        counted by reason and skipped, the rest of its page stored."""
        markets, rejected = _partition(markets, check_market)
        params = [
            (
                m.market_id, m.venue.value, m.native_id, m.title, m.category, m.status.value,
                m.url, m.event_id, m.event_title, m.slug, m.end_time, m.volume_total,
                m.volume_24h, m.liquidity, m.open_interest, list(m.tags), m.observed_at,
                m.observed_at, m.listed_at,
            )
            for m in markets
        ]  # fmt: skip
        venues = [m.venue.value for m in markets]
        return await self._upsert("markets", MARKET_UPSERT, params, venues, rejected)

    async def upsert_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        """Upsert outcomes; one refused (its market was, say) is counted and skipped alone."""
        outcomes, rejected = _partition(outcomes, check_outcome)
        params = [
            (
                o.outcome_id, o.market_id, o.venue.value, o.native_id, o.name, o.position,
                o.observed_at, o.observed_at,
            )
            for o in outcomes
        ]  # fmt: skip
        venues = [o.venue.value for o in outcomes]
        return await self._upsert("outcomes", OUTCOME_UPSERT, params, venues, rejected)

    async def open_market_ids(self, venue: Venue) -> set[str]:
        """Native ids of the venue's markets stored as trading (open, paused or upcoming)."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT native_id FROM markets WHERE venue = %s"
                " AND status IN ('open', 'paused', 'upcoming')",
                (venue.value,),
            )
            return {row[0] for row in await cur.fetchall()}

    async def open_listing(self, venue: Venue) -> list[Listed]:
        """The venue's open markets as the last discovery stored them, whoever discovered them,
        with their outcomes' native ids in order."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT m.native_id, m.volume_24h, m.end_time, m.event_id, m.liquidity, m.slug,"
                " array_agg(o.native_id ORDER BY o.position)"
                " FROM markets m JOIN outcomes o ON o.market_id = m.market_id"
                " WHERE m.venue = %s AND m.status = 'open' GROUP BY m.market_id",
                (venue.value,),
            )
            return [Listed(*row) for row in await cur.fetchall()]

    async def set_status(
        self, market_id: str, status: MarketStatus, observed_at: datetime | None
    ) -> None:
        """Record what became of a market that left the venue's open listing."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "UPDATE markets SET status = %s, updated_at = now(),"
                " last_seen = greatest(last_seen, coalesce(%s, last_seen))"
                " WHERE market_id = %s",
                (status.value, observed_at, market_id),
            )

    async def newest_trades(self, venue: Venue) -> dict[str, datetime]:
        """The newest stored trade time per market (native id): where trade collection resumes."""
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT m.native_id, max(t.time) FROM trades t"
                " JOIN outcomes o ON o.outcome_id = t.outcome_id"
                " JOIN markets m ON m.market_id = o.market_id"
                " WHERE t.venue = %s GROUP BY m.native_id",
                (venue.value,),
            )
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def _upsert(
        self,
        table: str,
        query: LiteralString,
        params: list[tuple[Any, ...]],
        venues: list[str],
        rejected: Counter[str],
    ) -> int:
        """Upsert rows in one transaction; rows the database refuses are found by bisection,
        counted and skipped (with ``rejected``, the rows refused before), the others stored."""
        refused: Counter[tuple[str, str]] = Counter()
        stored = 0
        if params:
            async with self._connection() as conn:
                stored = await self._upsert_isolating(
                    conn, query, list(zip(params, venues, strict=True)), refused
                )
        venue = venues[0] if venues else "unknown"
        for reason, count in rejected.items():
            refused[(venue, reason)] += count
        for (where, reason), count in refused.items():
            self.totals[(table, where, f"rejected:{reason}")] += count
            if (table, reason) not in self._logged_refusals:
                self._logged_refusals.add((table, reason))
                log.warning(
                    "rows refused",
                    table=table,
                    venue=where,
                    reason=reason,
                    rows=count,
                    note="logged once per table and reason; later ones are counted",
                )
        return stored

    async def _upsert_isolating(
        self,
        conn: psycopg.AsyncConnection[Any],
        query: LiteralString,
        rows: list[tuple[tuple[Any, ...], str]],
        refused: Counter[tuple[str, str]],
    ) -> int:
        try:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(query, [params for params, _ in rows])
            return len(rows)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            if len(rows) == 1:
                refused[(rows[0][1], f"database_{exc.sqlstate or 'error'}")] += 1
                return 0
            middle = len(rows) // 2
            return await self._upsert_isolating(
                conn, query, rows[:middle], refused
            ) + await self._upsert_isolating(conn, query, rows[middle:], refused)

    async def _insert(
        self,
        table: str,
        statement: Insert,
        rows: Sequence[T],
        columns: Callable[[Sequence[T]], dict[str, Any]],
        stored: Callable[[Sequence[T]], None] | None = None,
    ) -> tuple[int, _Failures]:
        """Insert in statements of ``batch_rows``, up to ``concurrency`` at once, each its own
        transaction; on a data error, bisect to store every good row. ``stored`` is told each
        statement's rows the database holds once it committed.

        When a statement fails for want of the database, the others still finish (their rows
        are committed; sent again, they are duplicates) and the first failure is raised.
        """
        failures: _Failures = _Failures()
        if not rows:
            return 0, failures
        slots = asyncio.Semaphore(1 if self._direct is not None else self.concurrency)

        async def one(chunk: Sequence[T]) -> int:
            refused = _Failures()
            async with slots, self._connection() as conn:
                started = time.monotonic()
                count = await self._insert_isolating(
                    conn, table, statement, chunk, columns, refused
                )
                self.latency.labels(table).observe(time.monotonic() - started)
            failures.merge(refused)
            if stored is not None:
                bad = {id(r) for r in refused.rows}
                stored([r for r in chunk if id(r) not in bad] if bad else chunk)
            return count

        step = self.batch_rows
        outcomes = await asyncio.gather(
            *(one(rows[i : i + step]) for i in range(0, len(rows), step)),
            return_exceptions=True,
        )
        written = 0
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            written += outcome
        return written, failures

    async def _insert_isolating(
        self,
        conn: psycopg.AsyncConnection[Any],
        table: str,
        statement: Insert,
        rows: Sequence[T],
        columns: Callable[[Sequence[T]], dict[str, Any]],
        failures: _Failures,
    ) -> int:
        try:
            return await self._execute(conn, table, statement, columns(rows), len(rows))
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            if len(rows) == 1:
                failures.add(rows[0], f"database_{exc.sqlstate or 'error'}")
                return 0
            middle = len(rows) // 2
            left, right = rows[:middle], rows[middle:]
            return await self._insert_isolating(
                conn, table, statement, left, columns, failures
            ) + await self._insert_isolating(conn, table, statement, right, columns, failures)

    async def _execute(
        self,
        conn: psycopg.AsyncConnection[Any],
        table: str,
        statement: Insert,
        params: dict[str, Any],
        count: int,
    ) -> int:
        """One batch in one transaction; returns the rows stored (the rest were duplicates)."""
        if table not in self._duplicates_seen:
            try:
                async with conn.transaction(), conn.cursor() as cur:
                    await cur.execute(statement.plain, params)
                    return max(cur.rowcount, 0)
            except psycopg.errors.UniqueViolation:
                self._duplicates_seen.add(table)
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(statement.idempotent, params)
            written = max(cur.rowcount, 0)
        if written == count:
            self._duplicates_seen.discard(table)
        return written

    def _connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """The connection of :meth:`flush_through` while it runs, else a pooled one; failures
        translated either way."""
        if self._direct is not None:
            return lent(self._direct)
        return self.database.connection()

    async def _load_newest(self, conn: Any) -> None:
        """Each venue's newest stored snapshot and trade, so the ingest-lag gauges are there from
        the start (a restart during a venue outage still raises IngestStale). One backward index
        scan per venue and table."""
        for table, statement in NEWEST.items():
            for venue in Venue:
                pattern = f"{venue.value}:%" if table == "snapshots" else venue.value
                cur = await conn.execute(statement, (pattern,))
                row = await cur.fetchone()
                known = self.newest.get((table, venue.value))
                if row is not None and (known is None or row[0] > known):
                    self.newest[(table, venue.value)] = row[0]

    def _note_newest(self, table: str, rows: Sequence[Snapshot] | Sequence[Trade]) -> None:
        for row in rows:
            key = (table, row.outcome_id.split(":", 1)[0])
            known = self.newest.get(key)
            if known is None or row.time > known:
                self.newest[key] = row.time

    def _count(self, result: WriteResult, venue: str) -> None:
        table = result.table
        self.totals[(table, venue, "written")] += result.written
        self.totals[(table, venue, "duplicate")] += result.duplicates
        self.totals[(table, venue, "unchanged")] += result.unchanged
        for reason, n in result.rejected.items():
            self.totals[(table, venue, f"rejected:{reason}")] += n


class _Failures:
    """Rows the database refused, counted by reason."""

    def __init__(self) -> None:
        self.reasons: Counter[str] = Counter()
        self.rows: list[object] = []

    def add(self, row: object, reason: str) -> None:
        self.rows.append(row)
        self.reasons[reason] += 1

    def merge(self, other: _Failures) -> None:
        self.rows += other.rows
        self.reasons.update(other.reasons)


def _venue_of(rows: Sequence[Snapshot] | Sequence[Trade]) -> str:
    """The venue of a batch (each job writes one venue's rows), from its first valid id."""
    for row in rows:
        with contextlib.suppress(ValueError):
            return venue_of(row.outcome_id).value
    return "unknown"


def _partition(rows: Iterable[T], check: Callable[[T], str | None]) -> tuple[list[T], Counter[str]]:
    valid: list[T] = []
    rejected: Counter[str] = Counter()
    for row in rows:
        reason = check(row)
        if reason is None:
            valid.append(row)
        else:
            rejected[reason] += 1
    return valid, rejected


class WriterCollector(Collector):
    """What the writer stored, refused and holds, and how fresh the stored data is."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def collect(self) -> Iterator[Metric]:
        writer = self.writer
        for table, name in (("snapshots", "snapshot"), ("trades", "trade")):
            family = GaugeMetricFamily(
                f"movers_last_{name}_timestamp_seconds",
                f"Time of the newest {name} row committed, by venue (time() - this = ingest lag).",
                labels=["venue"],
            )
            for (kind, venue), moment in sorted(writer.newest.items()):
                if kind == table:
                    family.add_metric([venue], moment.timestamp())
            yield family
        rows = CounterMetricFamily(
            "movers_rows",
            "Rows offered to the writer by table and outcome: written, duplicate, unchanged "
            "(change-only storage), rejected.",
            labels=["table", "venue", "outcome", "reason"],
        )
        for (table, venue, outcome), count in sorted(writer.totals.items()):
            kind, _, reason = outcome.partition(":")
            rows.add_metric([table, venue, kind, reason], count)
        yield rows
        backlog = writer.backlog
        held = GaugeMetricFamily(
            "movers_buffer_rows",
            "Rows held in memory while the database is unreachable, by table.",
            labels=["table"],
        )
        dropped = CounterMetricFamily(
            "movers_buffer_dropped_rows",
            "Rows dropped because the outage buffer was full (outage_buffer_rows), by table.",
            labels=["table"],
        )
        for table in ("snapshots", "trades"):
            held.add_metric([table], backlog.rows[table])
            dropped.add_metric([table], backlog.dropped[table])
        yield held
        yield dropped
        yield GaugeMetricFamily(
            "movers_buffer_capacity_rows",
            "Rows the outage buffer holds at most.",
            value=backlog.limit,
        )
        yield from writer.latency.collect()
