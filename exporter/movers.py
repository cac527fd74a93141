"""Top movers and category moves, computed in the database and stored for Grafana, the CLI and
the metrics.

For each open outcome and window: ``price_now`` is its latest price, ``price_then`` the last price
at or before ``now - window`` (carried forward through unchanged periods, but only up to
``movers.staleness``), ``move_pp = 100 * (price_now - price_then)``.

The refresh keeps each outcome's price at every boundary (now, and now minus each window) in one
row of ``movers_internal.outcome_prices`` and moves those boundaries forward by reading only the
snapshot rows that crossed them since the last refresh, so its cost follows the rate of change,
not the length of the history. The first refresh of a process (and one after the clock went back)
builds that state in full. The writer reports the oldest row of each statement it commits; when a
refresh already moved past it (a slow page, rows held through an outage), the next one reads
again from there.

The work is split into shares of the outcomes (by the hash of their id), one per connection, run
at once: each moves its outcomes' boundaries (``advance_sql``), ranks them and describes its own
top rows in one transaction, and one statement merges the shares' tops and sums (``_SHARE``,
``_MERGE``). Ranking sorts only the candidates for each group's top (see ``_ELIGIBLE``), and the
category aggregates are summed from the same per-bucket histogram, so one pass over the moves
feeds both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from exporter.config import MoversConfig
from exporter.model import Venue
from exporter.storage.database import Database

NOW = "now"
OVERLAP = timedelta(seconds=30)
"""Incremental reads of the newest rows start this far before the last refresh, for rows another
process commits a little after the time they carry (this process's writer reports the oldest row
of each statement it commits: see ``rows_stored``). A window's start passes a row only a window
after its time, long after its commit: no overlap there."""
WORK_MEM = "256MB"
"""For the refresh's own transaction: the moves of 150k outcomes (~360k window pairs) are held
and aggregated in memory, not spilled to disk."""


@dataclass(frozen=True, slots=True)
class Mover:
    window_label: str
    rank: int
    category_rank: int
    venue: str
    market_id: str
    outcome_id: str
    title: str
    outcome: str
    category: str
    url: str | None
    price_then: float
    price_now: float
    move_pp: float
    score: float
    volume_24h: float | None
    liquidity: float | None
    spread: float | None
    then_time: datetime
    now_time: datetime
    end_time: datetime | None
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class CategoryMove:
    window_label: str
    category: str
    markets: int
    moved: int
    moved_up: int
    moved_down: int
    mean_abs_move_pp: float
    top_market_id: str | None
    top_title: str | None
    top_move_pp: float | None
    computed_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshResult:
    computed_at: datetime
    full: bool
    movers: int
    categories: int
    seconds: float
    shares_seconds: float
    """Until the last share committed (boundaries moved, tops stored); the rest is the merge."""


def _in_share(outcome_id: str) -> str:
    """The outcomes of one share of a refresh: ``share`` of ``shares`` by the hash of their id."""
    return f"(hashtext({outcome_id}) & 2147483647) %% %(shares)s = %(share)s"


def _ranking(alias: str) -> str:
    """The ranking order of moves (best first; ties by |move|, then id), over rows ``alias``."""
    return f"{alias}.score DESC, abs({alias}.move_pp) DESC, {alias}.outcome_id"


def _category_rank(alias: str) -> str:
    return (
        f"row_number() OVER (PARTITION BY {alias}.label, {alias}.venue, {alias}.category"
        f" ORDER BY {_ranking(alias)}) AS category_rank"
    )


def advance_sql(windows: int) -> str:
    """The statement that moves every boundary of one share's outcomes (now, then the start of
    each of ``windows`` windows): by the newest row of each outcome in the boundary's slice of
    the snapshots (``%(since)s[k]`` to ``%(at)s[k]``), each outcome's row updated once. A price is
    replaced only by a newer one; an outcome seen first gets a row whose other boundaries are
    empty. The latest price is the row's own columns, a window's start its element of the
    arrays."""

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
    return f"""
WITH slices AS (
    SELECT b.k, s.* FROM unnest(%(since)s::timestamptz[], %(at)s::timestamptz[]) WITH ORDINALITY
        AS b (since, at, k)
    CROSS JOIN LATERAL (
        SELECT DISTINCT ON (outcome_id) outcome_id, time, price, bid, ask
        FROM snapshots
        WHERE time > b.since AND time <= b.at AND {_in_share("outcome_id")}
        ORDER BY outcome_id, time DESC
    ) s
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


# Every eligible (outcome, window) pair with its move, and the kept top of each window, venue and
# category; shared by the stored refresh and the naive reference, which differ only in where the
# two prices come from.
#
# Ranking sorts only the candidates for each group's top: a histogram of scores per group (buckets
# of 1/8 of a doubling, monotone in the score) gives the lowest bucket that still holds `keep`
# movers, and only rows from that bucket up are sorted. Every row below it scores strictly less
# than `keep` rows of its group, so the kept top and its ranks are exact.
_ELIGIBLE = f"""
filters AS (
    SELECT * FROM unnest(%(venues)s::text[], %(min_volume)s::float8[], %(max_spread)s::float8[])
        AS f (venue, min_volume, max_spread)
), multi AS (
    -- Markets of more than two outcomes (rare: read from their own index).
    SELECT DISTINCT market_id FROM outcomes WHERE position >= 2
), candidates AS MATERIALIZED (
    -- Each outcome's row once, before it meets the windows (the planner cannot tell how few
    -- outcomes pass the filters, and would otherwise join the windows first).
    SELECT p.outcome_id, m.venue, m.category, m.end_time, m.volume_24h, p.time AS now_time,
           p.price AS price_now, p.ask - p.bid AS spread, p.then_time, p.then_price
    FROM prices p
    JOIN outcomes o ON o.outcome_id = p.outcome_id
    JOIN markets m ON m.market_id = o.market_id AND m.status = 'open'
    JOIN filters f ON f.venue = m.venue
    LEFT JOIN multi x ON x.market_id = o.market_id
    WHERE (o.position = 0 OR x.market_id IS NOT NULL) AND coalesce(m.volume_24h, 0) >= f.min_volume
      AND p.time > %(now)s - %(staleness)s
      AND (f.max_spread IS NULL OR p.ask - p.bid <= f.max_spread + 1e-9)
), eligible AS (
    SELECT w.label, c.outcome_id, c.venue, c.category, c.end_time, c.volume_24h,
           c.then_price[w.i] AS price_then, c.price_now, c.then_time[w.i] AS then_time,
           c.now_time, c.spread, 100 * (c.price_now - c.then_price[w.i]) AS move_pp
    FROM candidates c
    CROSS JOIN unnest(%(labels)s::text[], %(widths)s::interval[]) WITH ORDINALITY
        AS w (label, width, i)
    WHERE c.then_time[w.i] > %(now)s - w.width - %(staleness)s
      AND NOT (%(exclude_resolving)s AND c.end_time IS NOT NULL
               AND c.end_time > %(now)s AND c.end_time <= %(now)s + w.width)
), scored AS (
    SELECT e.*, s.score,
           CASE WHEN s.score > 0 THEN floor(8 * ln(s.score) / ln(2))::int
                ELSE -2147483648 END AS bucket
    FROM eligible e
    CROSS JOIN LATERAL (
        SELECT abs(e.move_pp) * CASE WHEN %(by_score)s
                                     THEN ln(1 + greatest(coalesce(e.volume_24h, 0), 0))
                                     ELSE 1 END AS score
    ) s
), fine AS (
    -- Per window, venue, category and score bucket: the counts and sums the category
    -- aggregates add up, and the histogram the floors come from.
    SELECT label, venue, category, bucket,
           count(*) AS markets,
           count(*) FILTER (WHERE move_pp <> 0) AS movers,
           count(*) FILTER (WHERE abs(move_pp) >= %(threshold)s) AS moved,
           count(*) FILTER (WHERE move_pp >= %(threshold)s) AS moved_up,
           count(*) FILTER (WHERE -move_pp >= %(threshold)s) AS moved_down,
           sum(abs(move_pp) * coalesce(volume_24h, 0)) AS weighted,
           sum(coalesce(volume_24h, 0)) AS volume,
           sum(abs(move_pp)) AS sizes
    FROM scored GROUP BY label, venue, category, bucket
), floors AS (
    SELECT label, venue, category,
           coalesce(max(bucket) FILTER (WHERE above >= %(keep)s), min(bucket)) AS bucket
    FROM (
        SELECT label, venue, category, bucket,
               sum(movers) OVER (PARTITION BY label, venue, category ORDER BY bucket DESC) AS above
        FROM fine
    ) h
    GROUP BY label, venue, category
), ranked AS (
    SELECT s.*, {_category_rank("s")}
    FROM scored s
    JOIN floors f ON f.label = s.label AND f.venue = s.venue AND f.category = s.category
    WHERE s.move_pp <> 0 AND s.bucket >= f.bucket
)"""

# The kept rows of `ranked` (each group's top `keep`) with what the tables show of their market,
# looked up by key for each row: a few thousand rows against every outcome and market. (`LIMIT 1`
# keeps each lookup a subquery by key, which the planner would otherwise turn into a hash join
# over every outcome.)
_DESCRIBED = """described AS (
    SELECT r.*, o.market_id, o.outcome, m.title, m.url, m.liquidity
    FROM ranked r
    CROSS JOIN LATERAL (
        SELECT market_id, name AS outcome FROM outcomes WHERE outcome_id = r.outcome_id LIMIT 1
    ) o
    CROSS JOIN LATERAL (
        SELECT title, url, liquidity FROM markets WHERE market_id = o.market_id LIMIT 1
    ) m
    WHERE r.category_rank <= %(keep)s
)"""

# Kept rows (`described`), numbered over their window.
_NUMBERED = f"""numbered AS (
    SELECT d.*, row_number() OVER (PARTITION BY d.label ORDER BY {_ranking("d")}) AS rank
    FROM described d
)"""

_STORED_PRICES = """
WITH prices AS (
    SELECT outcome_id, time, price, bid, ask, then_time, then_price
    FROM movers_internal.outcome_prices WHERE share = %(share)s
), """

# The baseline the refresh is measured against: both prices looked up in the raw snapshots for
# every open outcome, at query time.
_NAIVE_PRICES = """
WITH prices AS (
    SELECT o.outcome_id, n.time, n.price, n.bid, n.ask,
           array_agg(t.time ORDER BY w.i) AS then_time,
           array_agg(t.price ORDER BY w.i) AS then_price
    FROM outcomes o
    CROSS JOIN LATERAL (
        SELECT time, price, bid, ask FROM snapshots
        WHERE outcome_id = o.outcome_id AND time <= %(now)s
        ORDER BY time DESC LIMIT 1
    ) n
    CROSS JOIN unnest(%(widths)s::interval[]) WITH ORDINALITY AS w (width, i)
    LEFT JOIN LATERAL (
        SELECT time, price FROM snapshots
        WHERE outcome_id = o.outcome_id AND time <= %(now)s - w.width
        ORDER BY time DESC LIMIT 1
    ) t ON true
    GROUP BY o.outcome_id, n.time, n.price, n.bid, n.ask
), """

_MOVER_COLUMNS = """window_label, rank, category_rank, venue, market_id, outcome_id, title,
    outcome, category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
    then_time, now_time, end_time, computed_at"""

_SHARE_COLUMNS = """label, venue, market_id, outcome_id, title, outcome, category, url, price_then,
    price_now, move_pp, score, volume_24h, liquidity, spread, then_time, now_time, end_time"""

# One share of the outcomes (those whose id hashes to `share` of `shares`), ranked on its own
# connection while the other shares are ranked on theirs: its top `keep` of every window, venue
# and category, and its sums for the category aggregates. Every row of a group's top over all
# outcomes is in its share's top, so `_MERGE` ranks the shares' tops into the exact ranking.
_SHARE = (
    _STORED_PRICES
    + _ELIGIBLE
    + ", "
    + _DESCRIBED
    + f""", kept AS (
    INSERT INTO movers_internal.share_movers ({_SHARE_COLUMNS})
    SELECT {_SHARE_COLUMNS} FROM described
    RETURNING 1
), sums AS (
    INSERT INTO movers_internal.share_categories (label, category, markets, moved, moved_up,
                                                  moved_down, weighted, volume, sizes)
    SELECT label, category, sum(markets), sum(moved), sum(moved_up), sum(moved_down),
           sum(weighted), sum(volume), sum(sizes)
    FROM fine GROUP BY label, category
    RETURNING 1
)
SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM sums)
"""
)

# The shares' tops and sums of one refresh, merged into the stored ranking and category moves
# (in one transaction: a reader never sees half of a refresh). The shares' rows are already
# described: here they are only ranked over all shares and numbered. The next refresh empties
# the shares' tables.
_MERGE = (
    f"""
WITH described AS (
    SELECT * FROM (SELECT s.*, {_category_rank("s")} FROM movers_internal.share_movers s) r
    WHERE r.category_rank <= %(keep)s
), """
    + _NUMBERED
    + f""", kept AS (
    INSERT INTO movers ({_MOVER_COLUMNS})
    SELECT label, rank, category_rank, venue, market_id, outcome_id, title, outcome, category,
           url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread, then_time,
           now_time, end_time, %(now)s
    FROM numbered
    RETURNING 1
), tops AS (
    SELECT DISTINCT ON (label, category) label, category, market_id, title, move_pp
    FROM numbered ORDER BY label, category, rank
), categories AS (
    SELECT label, category, sum(markets)::int AS markets, sum(moved)::int AS moved,
           sum(moved_up)::int AS moved_up, sum(moved_down)::int AS moved_down,
           coalesce(sum(weighted) / nullif(sum(volume), 0), sum(sizes) / sum(markets))
               AS mean_abs_move_pp
    FROM movers_internal.share_categories GROUP BY label, category
), stored AS (
    INSERT INTO category_moves (window_label, category, markets, moved, moved_up, moved_down,
                                mean_abs_move_pp, top_market_id, top_title, top_move_pp,
                                computed_at)
    SELECT c.label, c.category, c.markets, c.moved, c.moved_up, c.moved_down,
           c.mean_abs_move_pp, t.market_id, t.title, t.move_pp, %(now)s
    FROM categories c LEFT JOIN tops t ON t.label = c.label AND t.category = c.category
    RETURNING 1
), history AS (
    INSERT INTO category_moves_history (time, window_label, category, markets, moved,
                                        mean_abs_move_pp)
    SELECT %(now)s, label, category, markets, moved, mean_abs_move_pp FROM categories
    ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM stored)
"""
)

_NAIVE = (
    _NAIVE_PRICES
    + _ELIGIBLE
    + ", "
    + _DESCRIBED
    + ", "
    + _NUMBERED
    + """
SELECT label AS window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome,
       category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
       then_time, now_time, end_time, %(now)s AS computed_at
FROM numbered ORDER BY label, rank
"""
)


def query_parameters(config: MoversConfig, now: datetime) -> dict[str, Any]:
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
    }


class MoversRefresher:
    """Recomputes ``movers``, ``category_moves`` and ``category_moves_history``; one per process."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        config: MoversConfig,
        history_kept: timedelta | None = None,
        concurrency: int = 1,
    ) -> None:
        self.pool = pool
        self.database = Database(pool)
        self.config = config
        self.history_kept = history_kept
        self.concurrency = concurrency
        """Shares of the outcomes a refresh moves and ranks at once, each on its own connection
        (``database.write_concurrency``)."""
        self._advance = advance_sql(len(config.labels))
        self._marks: dict[str, datetime] = {}
        self._full_done = False
        self._oldest_stored: datetime | None = None
        self.last: RefreshResult | None = None

    def rows_stored(self, earliest: datetime) -> None:
        """Rows as old as ``earliest`` were stored (told by this process's writer): the next
        refresh reads every boundary from there if it already moved past it (rows held through an
        outage, a page committed slowly), so this process's rows are never missed."""
        old = self._oldest_stored
        self._oldest_stored = earliest if old is None else min(old, earliest)

    def boundaries(self, now: datetime) -> dict[str, datetime]:
        return {NOW: now} | {label: now - width for label, width in self.config.labels.items()}

    def _since(self, boundary: str, at: datetime, oldest: datetime | None) -> datetime:
        """Where a boundary's advance starts reading: at its last position (a little before, for
        the newest rows), or earlier for rows stored since that are older. Never before
        ``at - staleness``: an older row could only become a price too stale to use."""
        since = self._marks[boundary] - (OVERLAP if boundary == NOW else timedelta())
        if oldest is not None:
            # The slice is `time > since`: one tick (PostgreSQL's resolution) before the row.
            since = min(since, oldest - timedelta(microseconds=1))
        return max(since, at - self.config.staleness)

    async def refresh(self, now: datetime | None = None) -> RefreshResult:
        started = time.monotonic()
        moment = now or datetime.now(UTC)
        full = not self._full_done or any(moment < mark for mark in self._marks.values())
        # Taken before the shares start: rows noted from here on are seen by this refresh or
        # noted again for the next.
        oldest, self._oldest_stored = self._oldest_stored, None
        params = query_parameters(self.config, moment) | {"shares": self.concurrency}
        try:
            async with self.database.connection() as conn:
                # The shares' rows of the last refresh (merged, or left by a failed one).
                await conn.execute(
                    "TRUNCATE movers_internal.share_movers, movers_internal.share_categories"
                )
                if full:
                    # A failed build leaves a partial state: the next refresh builds again.
                    self._full_done = False
                    await conn.execute("TRUNCATE movers_internal.outcome_prices")
            await _together(
                [
                    self._share(params | {"share": share}, full, oldest)
                    for share in range(self.concurrency)
                ]
            )
        except BaseException:
            # A share that committed moved its boundaries; moving them again from the old marks
            # changes nothing (a price is replaced only by a newer one).
            if oldest is not None:
                self.rows_stored(oldest)
            raise
        self._marks = self.boundaries(moment)
        self._full_done = True
        shared = time.monotonic() - started
        if full:
            async with self.database.connection() as conn:
                await conn.execute("ANALYZE movers_internal.outcome_prices, markets, outcomes")
        async with self.database.transaction() as conn:
            await _settings(conn)
            kept, categories = await self._merge(conn, params)
        seconds = time.monotonic() - started
        self.last = RefreshResult(moment, full, kept, categories, seconds, shared)
        return self.last

    async def _share(self, params: dict[str, Any], full: bool, oldest: datetime | None) -> None:
        """One share of the outcomes, in one transaction on its own connection: their prices at
        every boundary moved (or built) to this refresh's, then their ranking (``_SHARE``)."""
        async with self.database.transaction() as conn:
            await _settings(conn)
            boundaries = self.boundaries(params["now"])
            # A full build reads the whole slice a boundary's price can come from.
            since = [
                at - self.config.staleness if full else self._since(boundary, at, oldest)
                for boundary, at in boundaries.items()
            ]
            at = list(boundaries.values())
            await conn.execute(self._advance, params | {"since": since, "at": at})
            await conn.execute(_SHARE, params)

    async def _merge(
        self, conn: psycopg.AsyncConnection[Any], params: dict[str, Any]
    ) -> tuple[int, int]:
        await conn.execute("DELETE FROM movers")
        await conn.execute("DELETE FROM category_moves")
        cur = await conn.execute(_MERGE, params)
        row = await cur.fetchone()
        if self.history_kept is not None:
            await conn.execute(
                "DELETE FROM category_moves_history WHERE time < %s",
                (params["now"] - self.history_kept,),
            )
        return (int(row[0]), int(row[1])) if row else (0, 0)


async def _settings(conn: psycopg.AsyncConnection[Any]) -> None:
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


async def _together(calls: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``calls`` at once, each on its own pooled connection; when one fails the others still
    finish (committing or rolling back their own transaction), then the first failure is
    raised."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def naive_movers(
    conn: psycopg.AsyncConnection[Any], config: MoversConfig, now: datetime
) -> list[Mover]:
    """Movers computed from the raw snapshots at query time: the reference the refresh must
    agree with, and the baseline of its benchmark."""
    async with conn.cursor(row_factory=class_row(Mover)) as cur:
        await cur.execute(_NAIVE, query_parameters(config, now))
        return await cur.fetchall()


async def read_movers(
    conn: psycopg.AsyncConnection[Any],
    window: str,
    *,
    category: str | None = None,
    venue: str | None = None,
    limit: int = 20,
    min_abs_move_pp: float = 0.0,
) -> list[Mover]:
    """The stored ranking of one window, best first (the Top-Movers read)."""
    query = f"""
        SELECT {_MOVER_COLUMNS} FROM movers
        WHERE window_label = %(window)s
          AND (%(category)s::text IS NULL OR category = %(category)s)
          AND (%(venue)s::text IS NULL OR venue = %(venue)s)
          AND abs(move_pp) >= %(min_move)s
        ORDER BY rank LIMIT %(limit)s
    """
    params = {
        "window": window,
        "category": category,
        "venue": venue,
        "min_move": min_abs_move_pp,
        "limit": limit,
    }
    async with conn.cursor(row_factory=class_row(Mover)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def read_categories(
    conn: psycopg.AsyncConnection[Any], window: str | None = None
) -> list[CategoryMove]:
    query = """
        SELECT window_label, category, markets, moved, moved_up, moved_down, mean_abs_move_pp,
               top_market_id, top_title, top_move_pp, computed_at
        FROM category_moves WHERE %(window)s::text IS NULL OR window_label = %(window)s
        ORDER BY window_label, mean_abs_move_pp DESC, category
    """
    async with conn.cursor(row_factory=class_row(CategoryMove)) as cur:
        await cur.execute(query, {"window": window})
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class MoversView:
    """What ``/metrics`` shows of the last refresh: the exported movers of each window (bounded
    by ``movers.export``) and every category aggregate."""

    movers: tuple[Mover, ...] = ()
    categories: tuple[CategoryMove, ...] = ()
    computed_at: datetime | None = None


TITLE_CHARS, OUTCOME_CHARS, URL_CHARS = 200, 100, 300
"""Label values of the info metric are cut to these lengths (a longer URL is left out), so the
scrape stays within ``label_value_length_limit`` (1,024 bytes in prometheus/prometheus.yml)."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MoversJob(Collector):
    """The scheduled refresh: recompute in the database, then reload the exported view, which
    :meth:`collect` serves."""

    def __init__(self, refresher: MoversRefresher) -> None:
        self.refresher = refresher
        self.database = refresher.database
        self.config = refresher.config
        self.view = MoversView()

    async def run(self, now: datetime | None = None) -> dict[str, Any]:
        result = await self.refresher.refresh(now)
        export = self.config.export
        async with self.database.connection() as conn:
            movers = [
                mover
                for window in self.config.labels
                for mover in await read_movers(
                    conn,
                    window,
                    limit=export.max_series,
                    min_abs_move_pp=export.min_abs_move_pp,
                )
            ]
            categories = await read_categories(conn)
        self.view = MoversView(tuple(movers), tuple(categories), result.computed_at)
        return {
            "full": result.full,
            "movers": result.movers,
            "exported": len(movers),
            "seconds": round(result.seconds, 3),
            "shares_seconds": round(result.shares_seconds, 3),
        }

    def collect(self) -> Iterator[Metric]:
        view = self.view
        move = GaugeMetricFamily(
            "movers_market_move_ratio",
            "Price move over the window as a probability difference (0.12 = +12 pp), for the "
            "top movers with |move| >= movers.export.min_abs_move_pp, at most "
            "movers.export.max_series per window.",
            labels=["venue", "market_id", "window", "category"],
        )
        price = GaugeMetricFamily(
            "movers_market_price_ratio",
            "Latest price (probability 0..1) of each market among the exported movers.",
            labels=["venue", "market_id"],
        )
        info = InfoMetricFamily(
            "movers_market",
            "Title, outcome and link of each market among the exported movers (join with "
            "group_left on venue and market_id).",
            labels=["venue", "market_id", "category", "title", "outcome", "url"],
        )
        seen: set[str] = set()
        for m in view.movers:
            move.add_metric([m.venue, m.market_id, m.window_label, m.category], m.move_pp / 100)
            if m.market_id not in seen:
                seen.add(m.market_id)
                price.add_metric([m.venue, m.market_id], m.price_now)
                labels = [
                    m.venue,
                    m.market_id,
                    m.category,
                    _cut(m.title, TITLE_CHARS),
                    _cut(m.outcome, OUTCOME_CHARS),
                    m.url if m.url and len(m.url) <= URL_CHARS else "",
                ]
                info.add_metric(labels, {})
        yield from (move, price, info)
        markets = GaugeMetricFamily(
            "movers_category_markets",
            "Markets ranked in the category and window (open, passing the filters).",
            labels=["window", "category"],
        )
        moved = GaugeMetricFamily(
            "movers_category_moved_markets",
            "Markets of the category whose |move| over the window reached "
            "movers.category_threshold_pp.",
            labels=["window", "category"],
        )
        mean = GaugeMetricFamily(
            "movers_category_mean_abs_move_ratio",
            "Volume-weighted mean |move| of the category's markets over the window "
            "(probability difference).",
            labels=["window", "category"],
        )
        for c in view.categories:
            markets.add_metric([c.window_label, c.category], c.markets)
            moved.add_metric([c.window_label, c.category], c.moved)
            mean.add_metric([c.window_label, c.category], c.mean_abs_move_pp / 100)
        yield from (markets, moved, mean)
        if view.computed_at is not None:
            yield GaugeMetricFamily(
                "movers_movers_computed_timestamp_seconds",
                "When the movers shown were computed.",
                value=view.computed_at.timestamp(),
            )
