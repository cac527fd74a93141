"""The history backfill's storage: its points in ``snapshots`` (source ``backfill``, never over a
live row), its per-outcome cursors, and the aggregates' refresh over what it wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from exporter.config import AGGREGATES
from exporter.model import Snapshot
from exporter.storage.database import Database
from exporter.storage.maintenance import STEP_BUCKETS, ceil_time, floor_time
from exporter.storage.migrate import Mode
from exporter.storage.rows import HISTORY_INSERT, snapshot_columns
from exporter.storage.turns import Turns


@dataclass(frozen=True, slots=True)
class Cursor:
    """The span of an outcome's history stored at one resolution."""

    outcome_id: str
    covered_from: datetime
    covered_to: datetime
    points: int = 0
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Covered:
    """What one request told of an outcome: its history from ``start`` to ``end`` is stored
    (``points`` of it new), or ``note`` says why it has none."""

    outcome_id: str
    start: datetime
    end: datetime
    points: int = 0
    note: str | None = None


_CURSORS = """
SELECT outcome_id, covered_from, covered_to, points, note
FROM movers_internal.backfill_cursors WHERE fidelity = %s AND outcome_id = ANY(%s)
"""
# Each outcome's first live row from `since` on: one index probe per outcome.
_FIRST_LIVE = """
SELECT o.id, s.time FROM unnest(%s::text[]) AS o (id)
CROSS JOIN LATERAL (
    SELECT time FROM snapshots
    WHERE outcome_id = o.id AND time >= %s AND source = 'live'
    ORDER BY time LIMIT 1
) s
"""
# A span that touches the stored one grows it; one apart from it replaces it (the old span's
# points stay stored; only what the cursor remembers changes).
_ADVANCE = """
INSERT INTO movers_internal.backfill_cursors AS c
    (outcome_id, fidelity, covered_from, covered_to, points, note)
SELECT unnest(%(outcome_id)s::text[]), %(fidelity)s, unnest(%(start)s::timestamptz[]),
       unnest(%(end)s::timestamptz[]), unnest(%(points)s::int8[]), unnest(%(note)s::text[])
ON CONFLICT (outcome_id, fidelity) DO UPDATE SET
    covered_from = CASE WHEN EXCLUDED.covered_from <= c.covered_to
                         AND EXCLUDED.covered_to >= c.covered_from
                        THEN least(c.covered_from, EXCLUDED.covered_from)
                        ELSE EXCLUDED.covered_from END,
    covered_to = CASE WHEN EXCLUDED.covered_from <= c.covered_to
                       AND EXCLUDED.covered_to >= c.covered_from
                      THEN greatest(c.covered_to, EXCLUDED.covered_to)
                      ELSE EXCLUDED.covered_to END,
    points = c.points + EXCLUDED.points,
    note = EXCLUDED.note,
    updated_at = now()
"""
_NOTE_REROLL = """
INSERT INTO movers_internal.rollup_invalidations (name, lo, hi)
SELECT 'ohlc_1m', %s, %s
WHERE %s < (SELECT max(watermark) FROM movers_internal.rollup_state)
"""
_WRITTEN = (
    "INSERT INTO movers_internal.history_written (oldest, newest, outcome_ids) VALUES (%s, %s, %s)"
)


@dataclass(frozen=True, slots=True)
class StoredMarket:
    """A market as stored, with its outcomes' venue ids in order (what history is asked by)."""

    native_id: str
    slug: str | None
    event_id: str | None
    status: str
    volume_24h: float
    liquidity: float | None
    assets: tuple[str, ...]


_MARKETS = """
SELECT m.native_id, m.slug, m.event_id, m.status, coalesce(m.volume_24h, 0), m.liquidity,
       array_agg(o.native_id ORDER BY o.position)
FROM markets m JOIN outcomes o ON o.market_id = m.market_id
WHERE m.venue = %(venue)s
  AND (CASE WHEN %(refs)s::text[] IS NULL THEN m.status IN ('open', 'paused', 'upcoming')
            ELSE m.native_id = ANY(%(refs)s) OR m.slug = ANY(%(refs)s)
                 OR m.event_id = ANY(%(refs)s) END)
GROUP BY m.market_id
"""


class HistoryStore:
    def __init__(self, database: Database, mode: Mode, turns: Turns | None = None) -> None:
        self.database = database
        self.mode = mode
        self.turns = turns
        """This process's: the aggregates' refresh steps go after the movers refresh."""
        self._writing = asyncio.Lock()
        """One history write at a time, whatever the venue: the backfill never holds more than
        one of the pool's connections, so live writes always find one."""

    async def cursors(self, fidelity: timedelta, outcome_ids: Sequence[str]) -> dict[str, Cursor]:
        async with self.database.connection() as conn:
            cur = await conn.execute(_CURSORS, (_seconds(fidelity), list(outcome_ids)))
            return {row[0]: Cursor(*row) for row in await cur.fetchall()}

    async def markets(self, venue: str, refs: Sequence[str] | None = None) -> list[StoredMarket]:
        """The venue's trading markets; or, with ``refs``, the markets (of any status) whose id,
        slug or event is one of them."""
        async with self.database.connection() as conn:
            cur = await conn.execute(
                _MARKETS, {"venue": venue, "refs": None if refs is None else list(refs)}
            )
            return [
                StoredMarket(r[0], r[1], r[2], r[3], r[4], r[5], tuple(r[6]))
                for r in await cur.fetchall()
            ]

    async def first_live(self, outcome_ids: Sequence[str], since: datetime) -> dict[str, datetime]:
        """Each outcome's first live row at or after ``since`` (none: not in the result): the
        backfill writes only before it."""
        async with self.database.connection() as conn:
            cur = await conn.execute(_FIRST_LIVE, (list(outcome_ids), since))
            return {row[0]: row[1] for row in await cur.fetchall()}

    async def store(
        self, rows: Sequence[Snapshot], covered: Sequence[Covered], fidelity: timedelta
    ) -> int:
        """Write ``rows`` (a point where any row already is, live or not, is left alone) and
        advance the cursors, in one transaction: a restart resumes exactly after the last
        committed request. Returns the rows written."""
        written = 0
        async with self._writing, self.database.transaction() as conn:
            if rows:
                columns: dict[str, Any] = dict(snapshot_columns(rows))
                oldest, newest = min(columns["time"]), max(columns["time"])
                cur = await conn.execute(HISTORY_INSERT, columns)
                written = max(cur.rowcount, 0)
                if written:
                    ids = sorted(set(columns["outcome_id"]))
                    await conn.execute(_WRITTEN, (oldest, newest, ids))
            if covered:
                await conn.execute(
                    _ADVANCE,
                    {
                        "outcome_id": [c.outcome_id for c in covered],
                        "fidelity": _seconds(fidelity),
                        "start": [c.start for c in covered],
                        "end": [c.end for c in covered],
                        "points": [c.points for c in covered],
                        "note": [c.note for c in covered],
                    },
                )
        return written

    async def refresh_aggregates(self, oldest: datetime, newest: datetime) -> None:
        """After a pass: TimescaleDB refreshes each continuous aggregate over the buckets the
        backfill wrote in (its policies only look back hours), in steps of at most
        ``STEP_BUCKETS`` buckets, each taking its turn after the movers refresh. Elsewhere the
        range is noted once for the exporter's rollups, which reroll it at their next run (noted
        with every batch, they would reroll days of every outcome each run while the pass goes
        on)."""
        if self.mode is not Mode.TIMESCALE:
            async with self.database.transaction() as conn:
                await conn.execute(_NOTE_REROLL, (oldest, newest, oldest))
            return
        async with self.database.connection() as conn:
            await conn.set_autocommit(True)
            try:
                for name, (width, _) in AGGREGATES.items():
                    lo, hi = floor_time(oldest, width), ceil_time(newest, width) + width
                    while lo < hi:
                        end = min(hi, lo + STEP_BUCKETS * width)
                        async with self.turns.step() if self.turns else nullcontext():
                            await conn.execute(
                                sql.SQL("CALL refresh_continuous_aggregate({}, %s, %s)").format(
                                    sql.Literal(name)
                                ),
                                (lo, end),
                            )
                        lo = end
            finally:
                await conn.set_autocommit(False)

    async def forget(self, outcome_ids: Sequence[str] | None = None) -> int:
        """Drop cursors (all, or the outcomes'): their history is fetched again (idempotently)."""
        async with self.database.transaction() as conn:
            if outcome_ids is None:
                cur = await conn.execute("DELETE FROM movers_internal.backfill_cursors")
            else:
                cur = await conn.execute(
                    "DELETE FROM movers_internal.backfill_cursors WHERE outcome_id = ANY(%s)",
                    (list(outcome_ids),),
                )
            return max(cur.rowcount, 0)


def _seconds(fidelity: timedelta) -> int:
    return round(fidelity.total_seconds())
