"""What ``movers tune`` reads: the stretches of stored history where a market could have moved
enough to matter, and the prices inside them.

Replaying a week of 150,000 outcomes price by price would read every stored row. Most of them
cannot matter: a move of ``m`` pp over a window needs a price range of ``m`` pp within the window
(and the staleness before it). So the read narrows in two steps on the OHLC views, which cover
every stored row (materialised below the watermark, computed live above it):

1. ``ohlc_1d``: the outcome-days whose range, with the days a window and the staleness reach back
   over, could reach the lowest bar asked about;
2. ``ohlc_1h`` of those outcomes: per window, the hours whose range over the hours the window
   reaches back over could reach that window's bar for the hour, merged into spans.

A bar is a move in pp (``weighted`` false: the moves that could alert), or a score, the move
times the outcome's weight ``ln(1 + volume_24h)`` as the refresh ranks (``weighted``: the moves
that could take an alerting move's place in the export), given per window and hour; an hour
without a bar is not read. Only the rows of the spans (and the staleness and window before them)
are then read. Both steps only drop hours where no move could reach the bar, so nothing that
could matter is missed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from exporter.storage.database import lent

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Which outcomes rank, as the movers refresh decides (``movers_ranked.sql``): the first
    outcome of a two-outcome market, every outcome of a larger one, of a market whose 24 h volume
    passes its venue's filter, or of a watched market."""

    venues: Sequence[str]
    min_volume: Sequence[float]
    watched: Sequence[str]


@dataclass(frozen=True, slots=True)
class Span:
    """Hours of one outcome and window where a move of the window's floor was possible."""

    outcome_id: str
    window: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class OutcomeInfo:
    outcome_id: str
    market_id: str
    venue: str
    category: str
    title: str
    end_time: datetime | None
    watched: bool
    volume_24h: float | None


def _interval(text: str) -> sql.Composed:
    return sql.SQL("interval {}").format(sql.Literal(text))


def spans_sql(widths: Sequence[timedelta], staleness: timedelta) -> sql.Composed:
    """The two narrowing steps for these windows (in this order: ``%(labels)s`` names them;
    ``%(bar_labels)s``, ``%(bar_hours)s`` and ``%(bar_values)s`` give each window's bar per
    hour)."""
    reach_days = math.ceil((max(widths) + staleness) / DAY)

    def hours(width: timedelta) -> sql.Composed:
        return _interval(f"{math.ceil((width + staleness) / HOUR)} hours")

    ranges = sql.SQL(",\n           ").join(
        sql.SQL(
            "max(h.high) OVER (PARTITION BY h.outcome_id ORDER BY h.bucket RANGE BETWEEN {k}"
            " PRECEDING AND CURRENT ROW) - min(h.low) OVER (PARTITION BY h.outcome_id ORDER BY"
            " h.bucket RANGE BETWEEN {k} PRECEDING AND CURRENT ROW) AS r{i}"
        ).format(k=hours(width), i=sql.Literal(i))
        for i, width in enumerate(widths, start=1)
    )
    picks = sql.SQL(",\n                  ").join(
        sql.SQL("r{i}").format(i=sql.Literal(i)) for i in range(1, len(widths) + 1)
    )
    return sql.SQL(
        """
WITH filters AS (
    SELECT * FROM unnest(%(venues)s::text[], %(min_volume)s::float8[]) AS f (venue, min_volume)
), multi AS (
    SELECT DISTINCT market_id FROM outcomes WHERE position >= 2
), eligible AS MATERIALIZED (
    SELECT o.outcome_id,
           CASE WHEN %(weighted)s THEN ln(1 + greatest(coalesce(m.volume_24h, 0), 0))
                ELSE 1 END AS weight
    FROM outcomes o
    JOIN markets m ON m.market_id = o.market_id
    JOIN filters f ON f.venue = m.venue
    LEFT JOIN multi x ON x.market_id = o.market_id
    WHERE (o.position = 0 OR x.market_id IS NOT NULL)
      AND (m.market_id = ANY(%(watched)s::text[])
           OR coalesce(m.volume_24h, 0) >= f.min_volume)
), bars AS (
    SELECT * FROM unnest(%(bar_labels)s::text[], %(bar_hours)s::timestamptz[],
                         %(bar_values)s::float8[]) AS b (label, hour, bar)
), days AS MATERIALIZED (
    -- Outcomes with a day whose range, with the days before it a window reaches, could hold
    -- the smallest move asked about.
    SELECT DISTINCT outcome_id, weight FROM (
        SELECT d.outcome_id, e.weight,
               max(d.high) OVER w - min(d.low) OVER w AS range
        FROM ohlc_1d d JOIN eligible e ON e.outcome_id = d.outcome_id
        WHERE d.bucket >= %(since)s - {reach} AND d.bucket < %(until)s
        WINDOW w AS (PARTITION BY d.outcome_id ORDER BY d.bucket
                     RANGE BETWEEN {reach} PRECEDING AND CURRENT ROW)
    ) r
    WHERE 100 * r.range >= %(min_abs)s - 1e-9
      AND 100 * r.range * r.weight >= (SELECT min(bar) FROM bars) - 1e-9
), hours AS (
    SELECT h.outcome_id, h.bucket, d.weight,
           {ranges}
    FROM ohlc_1h h JOIN days d ON d.outcome_id = h.outcome_id
    WHERE h.bucket >= %(since)s - {reach} AND h.bucket < %(until)s
), flagged AS (
    SELECT h.outcome_id, w.label, h.bucket
    FROM hours h
    CROSS JOIN LATERAL unnest(%(labels)s::text[], ARRAY[{picks}]) AS w (label, range)
    JOIN bars b ON b.label = w.label AND b.hour = h.bucket
    WHERE 100 * w.range >= %(min_abs)s - 1e-9 AND 100 * w.range * h.weight >= b.bar - 1e-9
), islands AS (
    SELECT outcome_id, label, bucket,
           bucket - row_number() OVER (PARTITION BY outcome_id, label ORDER BY bucket)
                    * interval '1 hour' AS island
    FROM flagged
)
SELECT outcome_id, label, min(bucket) AS start, max(bucket) + interval '1 hour' AS end
FROM islands
GROUP BY outcome_id, label, island
ORDER BY outcome_id, label, start
"""
    ).format(reach=_interval(f"{reach_days} days"), ranges=ranges, picks=picks)


_ROWS = """
SELECT s.outcome_id, extract(epoch FROM s.time)::float8, s.price, s.ask - s.bid
FROM unnest(%(outcomes)s::text[], %(los)s::timestamptz[], %(his)s::timestamptz[])
    AS q (outcome_id, lo, hi)
CROSS JOIN LATERAL (
    SELECT time, outcome_id, price, bid, ask FROM snapshots
    WHERE outcome_id = q.outcome_id AND time >= q.lo AND time < q.hi
    UNION ALL
    (SELECT time, outcome_id, price, bid, ask FROM snapshots
     WHERE outcome_id = q.outcome_id AND time < q.lo ORDER BY time DESC LIMIT 1)
) s
ORDER BY s.outcome_id, s.time
"""

_TRADES = """
SELECT extract(epoch FROM t.time)::float8, t.venue, t.trade_id,
       coalesce(m.market_id, t.outcome_id), coalesce(m.title, t.outcome_id),
       coalesce(m.category, 'Other'), t.price * t.size, lower(t.trader)
FROM trades t
LEFT JOIN outcomes o ON o.outcome_id = t.outcome_id
LEFT JOIN markets m ON m.market_id = o.market_id
WHERE t.time >= %(since)s AND t.time < %(until)s
  AND (t.price * t.size >= %(floor)s OR lower(t.trader) = ANY(%(wallets)s::text[]))
ORDER BY t.time, t.venue, t.trade_id
"""

_INFO = """
SELECT o.outcome_id, m.market_id, m.venue, m.category, m.title, m.end_time,
       m.market_id = ANY(%(watched)s::text[]), m.volume_24h
FROM outcomes o JOIN markets m ON m.market_id = o.market_id
WHERE o.outcome_id = ANY(%(outcomes)s::text[])
"""

_EXTENT = """
SELECT (SELECT time FROM snapshots WHERE time >= %(since)s AND time < %(until)s
        ORDER BY time LIMIT 1),
       (SELECT time FROM snapshots WHERE time >= %(since)s AND time < %(until)s
        ORDER BY time DESC LIMIT 1)
"""

_WATCHED = """
SELECT market_id FROM markets
WHERE (venue = 'polymarket' AND (native_id = %(ref)s OR slug = %(ref)s))
   OR (venue = 'kalshi' AND (native_id = %(ref)s OR event_id = %(ref)s))
"""


async def stored_extent(
    conn: psycopg.AsyncConnection[Any], since: datetime, until: datetime
) -> tuple[datetime, datetime] | None:
    """The first and last stored price between ``since`` and ``until`` (None: none)."""
    async with lent(conn):
        row = await (await conn.execute(_EXTENT, {"since": since, "until": until})).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


async def latest_refresh(conn: psycopg.AsyncConnection[Any]) -> datetime | None:
    """When the movers refresh last ran (the instant it computed the moves at)."""
    async with lent(conn):
        row = await (await conn.execute("SELECT max(computed_at) FROM movers")).fetchone()
    return row[0] if row else None


async def watched_markets(
    conn: psycopg.AsyncConnection[Any], references: Sequence[str]
) -> dict[str, list[str]]:
    """The market ids each watchlist reference names (a Polymarket slug or condition id, a
    Kalshi market or event ticker), as the collectors resolve them."""
    found: dict[str, list[str]] = {}
    async with lent(conn):
        for ref in references:
            rows = await (await conn.execute(_WATCHED, {"ref": ref})).fetchall()
            found[ref] = [r[0] for r in rows]
    return found


def hourly(since: datetime, until: datetime) -> list[datetime]:
    """The hours (their starts) from the one holding ``since`` to ``until``."""
    hour = since.replace(minute=0, second=0, microsecond=0)
    found = []
    while hour < until:
        found.append(hour)
        hour += HOUR
    return found


async def move_spans(
    conn: psycopg.AsyncConnection[Any],
    *,
    eligibility: Eligibility,
    windows: dict[str, timedelta],
    bars: Mapping[str, Mapping[datetime, float]],
    staleness: timedelta,
    since: datetime,
    until: datetime,
    weighted: bool = False,
    min_abs: float = 0.0,
) -> list[Span]:
    """The spans of every eligible outcome and window where a move of at least ``min_abs`` pp
    could reach the window's bar for the hour (``bars``: per window, hour start to bar; a move
    in pp, or with ``weighted`` a score), evaluated from ``since`` to ``until``."""
    labels = list(windows)
    flat = [(label, hour, bar) for label in labels for hour, bar in bars.get(label, {}).items()]
    if not flat:
        return []
    statement = spans_sql([windows[label] for label in labels], staleness)
    params = {
        "venues": list(eligibility.venues),
        "min_volume": list(eligibility.min_volume),
        "watched": list(eligibility.watched),
        "since": since,
        "until": until,
        "labels": labels,
        "bar_labels": [f[0] for f in flat],
        "bar_hours": [f[1] for f in flat],
        "bar_values": [f[2] for f in flat],
        "weighted": weighted,
        "min_abs": min_abs,
    }
    async with lent(conn), conn.cursor() as cur:
        await cur.execute("SET LOCAL work_mem = '256MB'")
        # Its row estimates are far too high (window frames over views), so the planner would
        # compile it with JIT: seconds of compiling for a statement that runs in less.
        await cur.execute("SET LOCAL jit = off")
        await cur.execute(statement, params)
        rows = await cur.fetchall()
    return [Span(r[0], r[1], max(r[2], since), min(r[3], until)) for r in rows if r[3] > since]


async def outcome_rows(
    conn: psycopg.AsyncConnection[Any], reads: Sequence[tuple[str, datetime, datetime]]
) -> dict[str, list[tuple[float, float, float | None]]]:
    """Each outcome's stored ``(unix time, price, spread)`` rows in ``[lo, hi)`` of its reads
    (merged, in time order), with the last row before each read's start."""
    found: dict[str, list[tuple[float, float, float | None]]] = {}
    if not reads:
        return found
    params = {
        "outcomes": [r[0] for r in reads],
        "los": [r[1] for r in reads],
        "his": [r[2] for r in reads],
    }
    async with lent(conn), conn.cursor() as cur:
        await cur.execute("SET LOCAL jit = off")  # as in move_spans
        await cur.execute(_ROWS, params)
        previous: tuple[str, float] | None = None
        async for outcome_id, at, price, spread in cur:
            if previous == (outcome_id, at):
                continue  # the row before a read can be the last of the read before it
            previous = (outcome_id, at)
            found.setdefault(outcome_id, []).append((at, price, spread))
    return found


async def outcome_info(
    conn: psycopg.AsyncConnection[Any], outcomes: Sequence[str], watched: Sequence[str]
) -> dict[str, OutcomeInfo]:
    async with lent(conn):
        rows = await (
            await conn.execute(_INFO, {"outcomes": list(outcomes), "watched": list(watched)})
        ).fetchall()
    return {r[0]: OutcomeInfo(*r) for r in rows}


@dataclass(frozen=True, slots=True)
class TradeRow:
    """A stored trade that could notify: when (unix seconds), where, its market and size."""

    at: float
    venue: str
    trade_id: str
    market_id: str
    title: str
    category: str
    notional: float
    trader: str | None


async def notable_trades(
    conn: psycopg.AsyncConnection[Any],
    since: datetime,
    until: datetime,
    floor: float,
    wallets: Sequence[str],
) -> list[TradeRow]:
    """The trades from ``since`` to ``until`` of at least ``floor`` notional (price times size),
    or by one of ``wallets``, in time order, with their markets (a trade of an outcome not
    stored yet: its outcome id, as the exporter labels it)."""
    params = {"since": since, "until": until, "floor": floor, "wallets": list(wallets)}
    async with lent(conn), conn.cursor() as cur:
        await cur.execute(_TRADES, params)
        return [TradeRow(*r) for r in await cur.fetchall()]


_CATEGORY_SIZES = """
WITH filters AS (
    SELECT * FROM unnest(%(venues)s::text[], %(min_volume)s::float8[]) AS f (venue, min_volume)
), multi AS (
    SELECT DISTINCT market_id FROM outcomes WHERE position >= 2
)
SELECT m.category, count(*)
FROM outcomes o
JOIN markets m ON m.market_id = o.market_id AND m.status = 'open'
JOIN filters f ON f.venue = m.venue
LEFT JOIN multi x ON x.market_id = o.market_id
WHERE (o.position = 0 OR x.market_id IS NOT NULL)
  AND coalesce(m.volume_24h, 0) >= f.min_volume
  AND EXISTS (SELECT 1 FROM snapshots s WHERE s.outcome_id = o.outcome_id
              AND s.time >= %(since)s AND s.time < %(until)s)
GROUP BY m.category
"""


async def category_sizes(
    conn: psycopg.AsyncConnection[Any], eligibility: Eligibility, since: datetime, until: datetime
) -> dict[str, int]:
    """Per category, the outcomes its aggregates count (open, passing the volume filter, the
    first of a two-outcome market or any of a larger one) that have a price in the span."""
    params = {"venues": list(eligibility.venues), "min_volume": list(eligibility.min_volume),
              "since": since, "until": until}  # fmt: skip
    async with lent(conn), conn.cursor() as cur:
        await cur.execute("SET LOCAL jit = off")
        await cur.execute(_CATEGORY_SIZES, params)
        return {str(r[0]): int(r[1]) for r in await cur.fetchall()}
