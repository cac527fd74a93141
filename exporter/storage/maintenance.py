"""Exporter-managed rollups and retention, for servers without TimescaleDB's policies.

Rollups are incremental from a watermark per level (``ohlc_1m`` from ``snapshots``, ``ohlc_1h``
from ``ohlc_1m``, ``ohlc_1d`` from ``ohlc_1h``): each run materialises the complete buckets since
the watermark, re-rolls the buckets that late rows landed in (noted by the writer), and is
idempotent (delete + insert of the same range in one transaction). A long range (a backfilled
week re-rolled) goes in steps of at most :data:`STEP_BUCKETS` buckets, each its own transaction
that notes the rest for the next. Never re-rolls buckets whose source rows retention may already
have removed.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from exporter.config import AGGREGATES, StorageConfig
from exporter.storage.migrate import Mode
from exporter.storage.turns import Turns

_PARENT = {"ohlc_1m": "ohlc_1h", "ohlc_1h": "ohlc_1d"}
STEP_BUCKETS = 60
"""Buckets one rollup transaction recomputes at most (an hour of ``ohlc_1m`` for every outcome:
seconds at 180,000 outcomes). A week of backfilled history re-rolled in one transaction took
8 minutes there, holding back vacuum and every later rollup."""


@dataclass(frozen=True, slots=True)
class RollupResult:
    level: str
    start: datetime | None
    """First bucket recomputed (None: from the beginning)."""
    watermark: datetime
    rows: int


def floor_time(value: datetime, width: timedelta) -> datetime:
    """Start of the UTC-aligned bucket of ``width`` holding ``value``."""
    step = int(width.total_seconds())
    seconds = int(value.timestamp()) // step * step
    return datetime.fromtimestamp(seconds, UTC)


def ceil_time(value: datetime, width: timedelta) -> datetime:
    floored = floor_time(value, width)
    return floored if floored == value else floored + width


async def db_now(conn: psycopg.AsyncConnection[Any]) -> datetime:
    """The server's clock, read in a transaction of its own: left open, it would make every
    step after it a savepoint of one transaction lasting the whole pass (a backfilled week's
    re-roll: minutes holding back vacuum, the movers refresh's working rows bloating)."""
    async with conn.transaction():
        cur = await conn.execute("SELECT now()")
        row = await cur.fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


async def run_rollups(
    conn: psycopg.AsyncConnection[Any],
    storage: StorageConfig,
    now: datetime | None = None,
    turns: Turns | None = None,
) -> list[RollupResult]:
    """Bring every level's store up to ``now - end_offset``, a step (one transaction) at a time,
    each taking its turn after the movers refresh (``turns``: this process's)."""
    moment = now or await db_now(conn)
    return [await _roll(conn, storage, level, moment, turns) for level in AGGREGATES]


async def _roll(
    conn: psycopg.AsyncConnection[Any],
    storage: StorageConfig,
    level: str,
    now: datetime,
    turns: Turns | None,
) -> RollupResult:
    """Bring one level up to date, a step (one transaction) at a time."""
    first: RollupResult | None = None
    rows = 0
    while True:
        async with turns.step() if turns is not None else nullcontext():
            step, done = await _roll_step(conn, storage, level, now)
        first = first or step
        rows += step.rows
        if done:
            return RollupResult(level, first.start, step.watermark, rows)


async def _roll_step(
    conn: psycopg.AsyncConnection[Any], storage: StorageConfig, level: str, now: datetime
) -> tuple[RollupResult, bool]:
    """One transaction: the level's oldest :data:`STEP_BUCKETS` buckets still to (re-)roll, the
    rest noted for the next step. Returns what it did and whether the level is up to date."""
    width, source = AGGREGATES[level]
    policy = getattr(storage.refresh, level)
    target = floor_time(now - policy.end_offset, width)
    store = sql.Identifier("movers_internal", f"{level}_store")
    compute = sql.Identifier("movers_internal", f"{level}_compute")
    async with conn.transaction():
        # NO KEY: one rollup of a level at a time, while the late rows written meanwhile still
        # note themselves (their invalidation's foreign key only shares the key; FOR UPDATE
        # would hold them, and the writes with them, for the whole step).
        cur = await conn.execute(
            "SELECT CASE WHEN isfinite(watermark) THEN watermark END"
            " FROM movers_internal.rollup_state WHERE name = %s FOR NO KEY UPDATE",
            (level,),
        )
        row = await cur.fetchone()
        assert row is not None, f"rollup_state has no {level} row"
        old: datetime | None = row[0]
        cur = await conn.execute(
            "DELETE FROM movers_internal.rollup_invalidations WHERE name = %s RETURNING lo",
            (level,),
        )
        late = [lo for (lo,) in await cur.fetchall()]
        start = old
        if late and old is not None:
            start = min(old, floor_time(min(late), width))
        kept: timedelta | None = getattr(storage.retention, source)
        if kept is not None:
            horizon = ceil_time(now - kept, width)
            start = horizon if start is None else max(start, horizon)
        watermark = target if old is None else max(old, target)
        if start is not None and start >= watermark:
            await _set_watermark(conn, level, watermark)
            return RollupResult(level, start, watermark, 0), True
        # From the beginning (a first rollup) in one step: there is no start to step from.
        end = watermark if start is None else min(watermark, start + STEP_BUCKETS * width)
        lo = start or datetime.min.replace(tzinfo=UTC)
        await conn.execute(
            sql.SQL("DELETE FROM {} WHERE bucket >= %s AND bucket < %s").format(store), (lo, end)
        )
        cur = await conn.execute(
            sql.SQL("INSERT INTO {} SELECT * FROM {}(%s, %s)").format(store, compute),
            (start if start is not None else "-infinity", end),
        )
        rows = max(cur.rowcount, 0)
        await _set_watermark(conn, level, end if old is None else max(old, end))
        if old is not None and end < old:
            # The rest of the re-roll, for the next step (or, after a failure, the next run).
            await _note(conn, level, end, old)
        parent = _PARENT.get(level)
        if parent is not None and old is not None and start is not None and start < old:
            # Buckets below the old watermark changed: the parent level must re-roll them too.
            await _note(conn, parent, start, min(end, old))
    return RollupResult(level, start, end, rows), end >= watermark


async def _note(conn: psycopg.AsyncConnection[Any], level: str, lo: datetime, hi: datetime) -> None:
    await conn.execute(
        "INSERT INTO movers_internal.rollup_invalidations (name, lo, hi) VALUES (%s, %s, %s)",
        (level, lo, hi),
    )


async def _set_watermark(
    conn: psycopg.AsyncConnection[Any], level: str, watermark: datetime
) -> None:
    await conn.execute(
        "UPDATE movers_internal.rollup_state SET watermark = %s WHERE name = %s",
        (watermark, level),
    )


_RETAINED = {
    "snapshots": ("snapshots", "time"),
    "trades": ("trades", "time"),
    "ohlc_1m": ("movers_internal.ohlc_1m_store", "bucket"),
    "ohlc_1h": ("movers_internal.ohlc_1h_store", "bucket"),
    "ohlc_1d": ("movers_internal.ohlc_1d_store", "bucket"),
}


async def apply_retention(
    conn: psycopg.AsyncConnection[Any],
    storage: StorageConfig,
    mode: Mode,
    now: datetime | None = None,
) -> dict[str, int]:
    """Drop rows older than each relation's retention; returns rows (or chunks) removed."""
    moment = now or await db_now(conn)
    removed: dict[str, int] = {}
    for name, (relation, column) in _RETAINED.items():
        kept: timedelta | None = getattr(storage.retention, name)
        if kept is None:
            continue
        cutoff = moment - kept
        async with conn.transaction():
            if mode is Mode.HYPERTABLE and name in ("snapshots", "trades"):
                cur = await conn.execute(
                    "SELECT count(*) FROM drop_chunks(%s::regclass, older_than => %s)",
                    (relation, cutoff),
                )
                row = await cur.fetchone()
                removed[name] = int(row[0]) if row else 0
            else:
                schema, _, table = relation.rpartition(".")
                target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
                cur = await conn.execute(
                    sql.SQL("DELETE FROM {} WHERE {} < %s").format(target, sql.Identifier(column)),
                    (cutoff,),
                )
                removed[name] = max(cur.rowcount, 0)
    return removed
