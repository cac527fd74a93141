"""Top movers and category moves, computed in the database and stored for Grafana, the CLI and
the metrics.

For each open outcome and window: ``price_now`` is its latest price, ``price_then`` the last price
at or before ``now - window`` (carried forward through unchanged periods, but only up to
``movers.staleness``), ``move_pp = 100 * (price_now - price_then)``.

The refresh keeps each outcome's price at every boundary (now, and now minus each window) in
``movers_internal.window_prices`` and moves those boundaries forward by reading only the snapshot
rows that crossed them since the last refresh, so its cost follows the rate of change, not the
length of the history. The first refresh of a process, one an hour, and one after the writer
flushed rows that arrived late, rebuild that state in full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool

from exporter.config import MoversConfig
from exporter.model import Venue

NOW = "now"
OVERLAP = timedelta(minutes=2)
"""Incremental reads of the newest rows start this far before the last refresh, for rows
committed a little after the time they carry (a page's receive time precedes its commit). A
window's start passes a row only a window after its time, long after its commit: no overlap."""
FULL_EVERY = timedelta(hours=1)
WORK_MEM = "256MB"
"""For the refresh's own transaction: ranking 250k moving outcomes sorts ~60 MB."""


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


_FULL_BOUNDARY = """
INSERT INTO movers_internal.window_prices (boundary, outcome_id, time, price, bid, ask)
SELECT DISTINCT ON (outcome_id) %(boundary)s, outcome_id, time, price, bid, ask
FROM snapshots
WHERE time > %(at)s - %(staleness)s AND time <= %(at)s
ORDER BY outcome_id, time DESC
"""
_ADVANCE_BOUNDARY = """
INSERT INTO movers_internal.window_prices AS w (boundary, outcome_id, time, price, bid, ask)
SELECT DISTINCT ON (outcome_id) %(boundary)s, outcome_id, time, price, bid, ask
FROM snapshots
WHERE time > %(since)s AND time <= %(at)s
ORDER BY outcome_id, time DESC
ON CONFLICT (boundary, outcome_id) DO UPDATE SET
    time = EXCLUDED.time, price = EXCLUDED.price, bid = EXCLUDED.bid, ask = EXCLUDED.ask
WHERE EXCLUDED.time > w.time
"""

# Every eligible (outcome, window) pair with its move; shared by the stored refresh and the naive
# reference, which differ only in where the two prices come from.
_ELIGIBLE = """
windows AS (
    SELECT * FROM unnest(%(labels)s::text[], %(widths)s::interval[]) AS w (label, width)
), filters AS (
    SELECT * FROM unnest(%(venues)s::text[], %(min_volume)s::float8[], %(max_spread)s::float8[])
        AS f (venue, min_volume, max_spread)
), sizes AS (
    SELECT market_id, count(*) AS n FROM outcomes GROUP BY market_id
), candidates AS (
    SELECT o.outcome_id, o.market_id, m.venue, m.category, m.end_time, m.volume_24h,
           f.max_spread
    FROM outcomes o
    JOIN markets m ON m.market_id = o.market_id AND m.status = 'open'
    JOIN filters f ON f.venue = m.venue
    JOIN sizes s ON s.market_id = o.market_id
    WHERE (o.position = 0 OR s.n > 2) AND coalesce(m.volume_24h, 0) >= f.min_volume
), eligible AS (
    SELECT w.label, c.*, t.price AS price_then, n.price AS price_now, t.time AS then_time,
           n.time AS now_time, n.ask - n.bid AS spread,
           100 * (n.price - t.price) AS move_pp
    FROM candidates c
    JOIN prices_now n ON n.outcome_id = c.outcome_id
    CROSS JOIN windows w
    JOIN prices_then t ON t.label = w.label AND t.outcome_id = c.outcome_id
    WHERE n.time > %(now)s - %(staleness)s
      AND t.time > %(now)s - w.width - %(staleness)s
      AND (c.max_spread IS NULL OR n.ask - n.bid <= c.max_spread + 1e-9)
      AND NOT (%(exclude_resolving)s AND c.end_time IS NOT NULL
               AND c.end_time > %(now)s AND c.end_time <= %(now)s + w.width)
), scored AS (
    SELECT e.*,
           abs(e.move_pp) * CASE WHEN %(by_score)s
                                 THEN ln(1 + greatest(coalesce(e.volume_24h, 0), 0))
                                 ELSE 1 END AS score
    FROM eligible e
), ranked AS (
    SELECT s.*,
           row_number() OVER (PARTITION BY label
                              ORDER BY score DESC, abs(move_pp) DESC, outcome_id) AS rank,
           row_number() OVER (PARTITION BY label, venue, category
                              ORDER BY score DESC, abs(move_pp) DESC, outcome_id) AS category_rank
    FROM scored s WHERE move_pp <> 0
), detailed AS (
    SELECT r.*, o.name AS outcome, m.title, m.url, m.liquidity
    FROM ranked r
    JOIN outcomes o ON o.outcome_id = r.outcome_id
    JOIN markets m ON m.market_id = r.market_id
    WHERE r.category_rank <= %(keep)s
)"""

_STORED_PRICES = """
WITH prices_now AS (
    SELECT outcome_id, time, price, bid, ask FROM movers_internal.window_prices
    WHERE boundary = 'now'
), prices_then AS (
    SELECT boundary AS label, outcome_id, time, price FROM movers_internal.window_prices
    WHERE boundary <> 'now'
), """

# The baseline the refresh is measured against: both prices looked up in the raw snapshots for
# every open outcome, at query time.
_NAIVE_PRICES = """
WITH prices_now AS (
    SELECT o.outcome_id, s.time, s.price, s.bid, s.ask FROM outcomes o
    CROSS JOIN LATERAL (
        SELECT time, price, bid, ask FROM snapshots
        WHERE outcome_id = o.outcome_id AND time <= %(now)s
        ORDER BY time DESC LIMIT 1
    ) s
), prices_then AS (
    SELECT w.label, o.outcome_id, s.time, s.price
    FROM outcomes o
    CROSS JOIN unnest(%(labels)s::text[], %(widths)s::interval[]) AS w (label, width)
    CROSS JOIN LATERAL (
        SELECT time, price FROM snapshots
        WHERE outcome_id = o.outcome_id AND time <= %(now)s - w.width
        ORDER BY time DESC LIMIT 1
    ) s
), """

_MOVER_COLUMNS = """window_label, rank, category_rank, venue, market_id, outcome_id, title,
    outcome, category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
    then_time, now_time, end_time, computed_at"""

_STORE = (
    _STORED_PRICES
    + _ELIGIBLE
    + """, kept AS (
    INSERT INTO movers (window_label, rank, category_rank, venue, market_id, outcome_id, title,
                        outcome, category, url, price_then, price_now, move_pp, score,
                        volume_24h, liquidity, spread, then_time, now_time, end_time,
                        computed_at)
    SELECT label, rank, category_rank, venue, market_id, outcome_id, title, outcome, category,
           url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread, then_time,
           now_time, end_time, %(now)s
    FROM detailed
    RETURNING 1
), tops AS (
    SELECT DISTINCT ON (label, category) label, category, market_id, title, move_pp
    FROM detailed ORDER BY label, category, rank
), categories AS (
    SELECT e.label, e.category, count(*) AS markets,
           count(*) FILTER (WHERE abs(e.move_pp) >= %(threshold)s) AS moved,
           count(*) FILTER (WHERE e.move_pp >= %(threshold)s) AS moved_up,
           count(*) FILTER (WHERE -e.move_pp >= %(threshold)s) AS moved_down,
           coalesce(sum(abs(e.move_pp) * coalesce(e.volume_24h, 0))
                    / nullif(sum(coalesce(e.volume_24h, 0)), 0),
                    avg(abs(e.move_pp))) AS mean_abs_move_pp
    FROM eligible e GROUP BY e.label, e.category
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
    + """
SELECT label AS window_label, rank, category_rank, venue, market_id, outcome_id, title, outcome,
       category, url, price_then, price_now, move_pp, score, volume_24h, liquidity, spread,
       then_time, now_time, end_time, %(now)s AS computed_at
FROM detailed ORDER BY label, rank
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
    }


class MoversRefresher:
    """Recomputes ``movers``, ``category_moves`` and ``category_moves_history``; one per process."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        config: MoversConfig,
        history_kept: timedelta | None = None,
    ) -> None:
        self.pool = pool
        self.config = config
        self.history_kept = history_kept
        self._marks: dict[str, datetime] = {}
        self._last_full: datetime | None = None
        self.last: RefreshResult | None = None

    def request_full(self) -> None:
        """Rebuild the boundary state at the next refresh (rows arrived later than their time)."""
        self._last_full = None

    def boundaries(self, now: datetime) -> dict[str, datetime]:
        return {NOW: now} | {label: now - width for label, width in self.config.labels.items()}

    async def refresh(self, now: datetime | None = None) -> RefreshResult:
        started = time.monotonic()
        moment = now or datetime.now(UTC)
        full = (
            self._last_full is None
            or moment - self._last_full >= FULL_EVERY
            or any(moment < mark for mark in self._marks.values())
        )
        staleness = self.config.staleness
        params = query_parameters(self.config, moment)
        async with self.pool.connection() as conn, conn.transaction():
            # A bulk computation over every outcome: hash joins, whatever the estimates say
            # (a nested loop planned on a table not yet analysed would be quadratic).
            await conn.execute("SET LOCAL enable_nestloop = off")
            # Every outcome's moves are sorted once to rank them: in memory, not spilled to disk.
            await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            if full:
                await conn.execute("TRUNCATE movers_internal.window_prices")
            for boundary, at in self.boundaries(moment).items():
                if full:
                    await conn.execute(
                        _FULL_BOUNDARY, {"boundary": boundary, "at": at, "staleness": staleness}
                    )
                else:
                    since = self._marks[boundary] - (OVERLAP if boundary == NOW else timedelta())
                    await conn.execute(
                        _ADVANCE_BOUNDARY, {"boundary": boundary, "at": at, "since": since}
                    )
            if full:
                await conn.execute("ANALYZE movers_internal.window_prices, markets, outcomes")
            await conn.execute("DELETE FROM movers")
            await conn.execute("DELETE FROM category_moves")
            cur = await conn.execute(_STORE, params)
            row = await cur.fetchone()
            if self.history_kept is not None:
                await conn.execute(
                    "DELETE FROM category_moves_history WHERE time < %s",
                    (moment - self.history_kept,),
                )
        self._marks = self.boundaries(moment)
        if full:
            self._last_full = moment
        kept, categories = (int(row[0]), int(row[1])) if row else (0, 0)
        self.last = RefreshResult(moment, full, kept, categories, time.monotonic() - started)
        return self.last


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


class MoversJob:
    """The scheduled refresh: recompute in the database, then reload the exported view."""

    def __init__(self, refresher: MoversRefresher) -> None:
        self.refresher = refresher
        self.pool = refresher.pool
        self.config = refresher.config
        self.view = MoversView()

    async def run(self, now: datetime | None = None) -> dict[str, Any]:
        result = await self.refresher.refresh(now)
        export = self.config.export
        async with self.pool.connection() as conn:
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
        }
