"""The movers' statements: the refresh's advance, share and merge, and the reads of its result.

The statements are ``.sql`` files (``sql/queries/movers_*.sql``) but one: the advance, whose
shape varies with the number of windows, built by :func:`advance_sql` (the one builder).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from exporter.config import MoversConfig
from exporter.model import CategoryMove, Mover, Venue
from exporter.storage.database import Database, lent
from exporter.storage.queries import query

WORK_MEM = "256MB"
"""For the refresh's own transactions: the moves of 150k outcomes (~360k window pairs) are held
and aggregated in memory, not spilled to disk."""


def advance_sql(windows: int, *, deep: bool = False) -> str:
    """The statement that moves every boundary of one share's outcomes (now, then the start of
    each of ``windows`` windows): by the newest row of each outcome in the boundary's slice of
    the snapshots (``%(since)s[k]`` to ``%(at)s[k]``), each outcome's row updated once. A price is
    replaced only by a newer one; an outcome seen first gets a row whose other boundaries are
    empty. The latest price is the row's own columns, a window's start its element of the
    arrays. With ``deep``, the outcomes ``%(deep)s`` (history written for them, up to
    ``%(deep_newest)s``) are read again over the whole slice a boundary's price can come from: one
    descent of their key a boundary, and none where the history cannot be the boundary's price
    (the stored one is as new as the newest point written, or the points are all outside the
    slice)."""
    if windows < 1:
        raise ValueError(f"windows must be at least 1, not {windows}")

    def newest(k: int, column: str) -> str:
        return f"min({column}) FILTER (WHERE k = {k})"

    def newer(old_time: str, new_time: str, old: str, new: str) -> str:
        return f"CASE WHEN {new_time} > coalesce({old_time}, '-infinity') THEN {new} ELSE {old} END"

    now_columns = ("time", "price", "bid", "ask")
    then = range(1, windows + 1)
    then_times = ", ".join(newest(k + 1, "time") for k in then)
    then_prices = ", ".join(newest(k + 1, "price") for k in then)
    now_set = ",\n    ".join(
        f"{c} = {newer('p.time', 'EXCLUDED.time', f'p.{c}', f'EXCLUDED.{c}')}" for c in now_columns
    )

    def then_set(column: str) -> str:
        return ", ".join(
            newer(f"p.then_time[{k}]", f"EXCLUDED.then_time[{k}]", f"p.{column}[{k}]",
                  f"EXCLUDED.{column}[{k}]")
            for k in then
        )  # fmt: skip

    moved = " OR ".join(
        ["EXCLUDED.time > coalesce(p.time, '-infinity')"]
        + [f"EXCLUDED.then_time[{k}] > coalesce(p.then_time[{k}], '-infinity')" for k in then]
    )
    slices = """
    SELECT b.k, s.* FROM unnest(%(since)s::timestamptz[], %(at)s::timestamptz[]) WITH ORDINALITY
        AS b (since, at, k)
    CROSS JOIN LATERAL (
        SELECT DISTINCT ON (outcome_id) outcome_id, time, price, bid, ask
        FROM snapshots
        WHERE time > b.since AND time <= b.at
          AND (hashtext(outcome_id) & 2147483647) %% %(shares)s = %(share)s
        ORDER BY outcome_id, time DESC
    ) s"""
    if deep:
        # The noted outcomes' boundaries history may have changed, each outcome's newest row at
        # the boundary by one descent of its key; an outcome in both keeps the newest row of
        # each boundary (one row per outcome and boundary, as the sums expect). A stored price
        # as new as the newest point written stays: history adds older rows, never newer ones.
        stored = "CASE b.k WHEN 1 THEN o.time ELSE o.then_time[b.k - 1] END"
        slices = f"""
    SELECT DISTINCT ON (k, outcome_id) * FROM ({slices}
    UNION ALL
    SELECT b.k, s.*
    FROM unnest(%(deep)s::text[], %(deep_oldest)s::timestamptz[], %(deep_newest)s::timestamptz[])
        AS d (outcome_id, oldest, newest)
    LEFT JOIN movers_internal.outcome_prices o USING (outcome_id)
    CROSS JOIN LATERAL (
        SELECT at - %(staleness)s AS since, at, k
        FROM unnest(%(at)s::timestamptz[]) WITH ORDINALITY AS u (at, k)
    ) b
    CROSS JOIN LATERAL (
        SELECT outcome_id, time, price, bid, ask FROM snapshots
        WHERE outcome_id = d.outcome_id AND time > b.since AND time <= b.at
        ORDER BY time DESC LIMIT 1
    ) s
    WHERE (hashtext(d.outcome_id) & 2147483647) %% %(shares)s = %(share)s
      AND d.newest > b.since AND d.oldest <= b.at
      AND d.newest > coalesce({stored}, '-infinity')
    ) both_ ORDER BY k, outcome_id, time DESC"""
    return f"""
WITH slices AS ({slices}
)
INSERT INTO movers_internal.outcome_prices AS p
    (outcome_id, share, time, price, bid, ask, then_time, then_price)
SELECT outcome_id, %(share)s, {", ".join(newest(1, c) for c in now_columns)},
       ARRAY[{then_times}]::timestamptz[], ARRAY[{then_prices}]::float8[]
FROM slices GROUP BY outcome_id
ON CONFLICT (outcome_id) DO UPDATE SET
    {now_set},
    then_time = ARRAY[{then_set("then_time")}],
    then_price = ARRAY[{then_set("then_price")}]
WHERE {moved}
"""


def query_parameters(
    config: MoversConfig, now: datetime, watched: Sequence[str] = ()
) -> dict[str, Any]:
    """The parameters every movers statement shares (one share of one by default); ``watched``:
    market ids ranked and kept whatever the filters say."""
    labels = config.labels
    venues = [v.value for v in Venue]
    filters = [getattr(config.filters, v) for v in venues]
    return {
        "now": now,
        "staleness": config.staleness,
        "labels": list(labels),
        "widths": list(labels.values()),
        "venues": venues,
        "min_volume": [f.min_volume_24h for f in filters],
        "max_spread": [f.max_spread for f in filters],
        "by_score": config.rank_by == "score",
        "exclude_resolving": config.exclude_resolving_within_window,
        "keep": config.keep,
        "threshold": config.category_threshold_pp,
        "shares": 1,
        "share": 0,
        "watched": list(watched),
    }


@dataclass(frozen=True, slots=True)
class Span:
    """The oldest and the newest point history wrote for an outcome."""

    oldest: datetime
    newest: datetime

    def __or__(self, other: Span) -> Span:
        return Span(min(self.oldest, other.oldest), max(self.newest, other.newest))


def merge_spans(into: dict[str, Span], spans: dict[str, Span]) -> None:
    """``spans`` noted in ``into``: an outcome in both spans both."""
    for outcome_id, span in spans.items():
        known = into.get(outcome_id)
        into[outcome_id] = span if known is None else known | span


@dataclass(slots=True)
class HistoryWritten:
    """History committed since the last refresh: the span of the points it wrote for each
    outcome, and the oldest of those noted without their outcomes (read again for every
    outcome)."""

    outcomes: dict[str, Span] = field(default_factory=dict)
    anywhere: datetime | None = None


class MoversStore:
    """The refresh's state and result tables, through the database facade."""

    def __init__(self, database: Database, windows: int) -> None:
        self.database = database
        self._advance = advance_sql(windows)
        self._advance_deep = advance_sql(windows, deep=True)

    async def history_written(self) -> HistoryWritten:
        """What history backfills (of any process) committed since the last call: each batch
        is taken once."""
        async with self.database.transaction() as conn:
            cur = await conn.execute(
                "DELETE FROM movers_internal.history_written RETURNING oldest, newest, outcome_ids"
            )
            rows = await cur.fetchall()
        written = HistoryWritten()
        for oldest, newest, ids in rows:
            if ids is None:  # noted before the outcomes were: any outcome
                written.anywhere = (
                    oldest if written.anywhere is None else min(written.anywhere, oldest)
                )
                continue
            merge_spans(written.outcomes, dict.fromkeys(ids, Span(oldest, newest)))
        return written

    async def clear_shares(self, *, rebuild: bool) -> None:
        """Empty the shares' rows of the last refresh (merged, or left by a failed one); with
        ``rebuild``, every outcome's boundaries too."""
        async with self.database.connection() as conn:
            await conn.execute(
                "TRUNCATE movers_internal.share_movers, movers_internal.share_categories"
            )
            if rebuild:
                await conn.execute("TRUNCATE movers_internal.outcome_prices")

    async def advance_and_rank(
        self,
        params: dict[str, Any],
        since: list[datetime],
        at: list[datetime],
        deep: dict[str, Span] | None = None,
    ) -> None:
        """One share, in one transaction: its boundaries moved from ``since`` to ``at`` (those
        of the outcomes of ``deep`` read again where their new history can change them), then
        its ranking and category sums stored for the merge."""
        async with self.database.transaction() as conn:
            await _bulk(conn)
            if deep is None:
                await conn.execute(self._advance, params | {"since": since, "at": at})
            else:
                ids = sorted(deep)
                await conn.execute(
                    self._advance_deep,
                    params | {
                        "since": since, "at": at, "deep": ids,
                        "deep_oldest": [deep[i].oldest for i in ids],
                        "deep_newest": [deep[i].newest for i in ids],
                    },
                )  # fmt: skip
            await conn.execute(query("movers_share"), params)

    async def analyze(self) -> None:
        """After a full build: the planner learns the new state's size."""
        async with self.database.connection() as conn:
            await conn.execute("ANALYZE movers_internal.outcome_prices, markets, outcomes")

    async def merge(self, params: dict[str, Any], history_from: datetime | None) -> tuple[int, int]:
        """The shares' tops and sums as the stored ranking and category moves, in one
        transaction; category history older than ``history_from`` dropped. Returns the movers
        and category rows stored."""
        async with self.database.transaction() as conn:
            await _bulk(conn)
            await conn.execute("DELETE FROM movers")
            await conn.execute("DELETE FROM category_moves")
            cur = await conn.execute(query("movers_merge"), params)
            row = await cur.fetchone()
            if history_from is not None:
                await conn.execute(
                    "DELETE FROM category_moves_history WHERE time < %s", (history_from,)
                )
        return (int(row[0]), int(row[1])) if row else (0, 0)


async def _bulk(conn: psycopg.AsyncConnection[Any]) -> None:
    """For a refresh's transaction: a bulk computation over every outcome."""
    # Hash joins, whatever the estimates say (a nested loop planned on a table not yet analysed
    # would be quadratic).
    await conn.execute("SET LOCAL enable_nestloop = off")
    # Those it still plans (a lookup by key per kept row) cost as much as the penalty that
    # disables them, which would take the plan over the JIT threshold: compiling the statement
    # costs more than a second, running it well under one.
    await conn.execute("SET LOCAL jit = off")
    # The moves are aggregated and ranked in memory, not spilled to disk.
    await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    # A refresh lost to a crash is redone by the next one: no need to wait for the WAL.
    await conn.execute("SET LOCAL synchronous_commit = off")


async def naive_movers(
    conn: psycopg.AsyncConnection[Any],
    config: MoversConfig,
    now: datetime,
    watched: Sequence[str] = (),
) -> list[Mover]:
    """Movers computed from the raw snapshots at query time: the reference the refresh must
    agree with, and the baseline of its benchmark."""
    async with lent(conn), conn.cursor(row_factory=class_row(Mover)) as cur:
        await cur.execute(query("movers_naive"), query_parameters(config, now, watched))
        return await cur.fetchall()


async def read_movers(
    conn: psycopg.AsyncConnection[Any],
    window: str,
    *,
    category: str | None = None,
    venue: str | None = None,
    limit: int = 20,
    min_abs_move_pp: float = 0.0,
    watched: Sequence[str] = (),
) -> list[Mover]:
    """The stored ranking of one window, best first (the top-movers read): the ``watched``
    markets' rows whatever their move and rank, then movers of at least ``min_abs_move_pp``,
    ``limit`` rows in all."""
    params = {
        "window": window,
        "category": category,
        "venue": venue,
        "min_move": min_abs_move_pp,
        "limit": limit,
        "watched": list(watched),
    }
    async with lent(conn), conn.cursor(row_factory=class_row(Mover)) as cur:
        await cur.execute(query("movers_read"), params)
        return await cur.fetchall()


async def read_categories(
    conn: psycopg.AsyncConnection[Any], window: str | None = None
) -> list[CategoryMove]:
    """The stored category moves of ``window`` (every window without one)."""
    async with lent(conn), conn.cursor(row_factory=class_row(CategoryMove)) as cur:
        await cur.execute(query("category_moves_read"), {"window": window})
        return await cur.fetchall()
