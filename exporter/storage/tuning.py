"""What ``movers tune`` reads: the stretches of stored history where a market could have moved
enough to matter, and the prices inside them.

Replaying a week of 150,000 outcomes price by price would read every stored row. Most of them
cannot matter: a move of ``m`` pp over a window needs a price now and a price a window earlier
``m`` pp apart. So the read narrows in two steps on the OHLC views, which cover every stored row
(materialised below the watermark, computed live above it), read once per replay
(:class:`MoveBounds`):

1. ``ohlc_1d``: the outcomes with a day whose range, with the days a window and the staleness
   reach back over, could hold the smallest move asked about;
2. ``ohlc_1h`` of those outcomes, read into arrays: per window and hour, the largest move the
   hourly highs and lows allow between the hours the price now can come from and those the price
   a window before can come from (:func:`bands`); the hours where that reaches the window's bar
   for the hour are merged into spans.

A bar is a move in pp (``weighted`` false: the moves that could alert), or a score, the move
times the outcome's weight ``ln(1 + volume_24h)`` as the refresh ranks (``weighted``: the moves
that could take an alerting move's place in the export), given per window and hour; an hour
without a bar is not read. Only the rows the spans' moves compare are then read, from the
primary key's index alone (migration 0013). Both steps only drop hours where no move could
reach the bar, so nothing that could matter is missed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from numpy.typing import NDArray

from exporter.storage.database import Database, lent

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


def bands(width: timedelta, staleness: timedelta) -> tuple[int, int]:
    """The hourly buckets, as hours before an hour's own, that hold the prices a window's move
    compares with the price now at an instant of the hour (oldest, newest): those of
    ``(t - width - staleness, t - width]`` for ``t`` in the hour."""
    return math.ceil((width + staleness) / HOUR), math.floor(width / HOUR)


_DAYS = """
WITH filters AS (
    SELECT * FROM unnest(%(venues)s::text[], %(min_volume)s::float8[]) AS f (venue, min_volume)
), multi AS (
    SELECT DISTINCT market_id FROM outcomes WHERE position >= 2
), eligible AS MATERIALIZED (
    SELECT o.outcome_id, ln(1 + greatest(coalesce(m.volume_24h, 0), 0)) AS weight
    FROM outcomes o
    JOIN markets m ON m.market_id = o.market_id
    JOIN filters f ON f.venue = m.venue
    LEFT JOIN multi x ON x.market_id = o.market_id
    WHERE (o.position = 0 OR x.market_id IS NOT NULL)
      AND (m.market_id = ANY(%(watched)s::text[])
           OR coalesce(m.volume_24h, 0) >= f.min_volume)
)
-- Each outcome's largest range over a day and the days before it a window reaches: no move of
-- any window can be larger.
SELECT outcome_id, weight, max(range) FROM (
    SELECT d.outcome_id, e.weight,
           max(d.high) OVER w - min(d.low) OVER w AS range
    FROM ohlc_1d d JOIN eligible e ON e.outcome_id = d.outcome_id
    WHERE d.bucket >= %(since)s - %(reach)s AND d.bucket < %(until)s
    WINDOW w AS (PARTITION BY d.outcome_id ORDER BY d.bucket
                 RANGE BETWEEN %(reach)s PRECEDING AND CURRENT ROW)
) r
GROUP BY outcome_id, weight
HAVING 100 * max(range) >= %(least)s - 1e-9
"""

_HOURS = """
SELECT h.outcome_id,
       string_agg(int4send(((extract(epoch FROM h.bucket) - %(base)s) / 3600)::int4)
                  || float8send(h.high) || float8send(h.low), ''::bytea)
FROM ohlc_1h h
WHERE h.outcome_id = ANY(%(outcomes)s::text[]) AND h.bucket >= %(lo)s AND h.bucket < %(hi)s
GROUP BY h.outcome_id
"""
_HOUR_ROW = np.dtype([("h", ">i4"), ("high", ">f8"), ("low", ">f8")])
_BATCH = 100_000
"""Outcomes whose hours one statement reads (20 bytes an hour, about 3 KB an outcome-week).
Each statement scans the hours of every outcome in the span (the outcome filter is a hash
lookup a row, cheaper than an index descent an outcome), so a replay makes as few as it can."""
MARGIN = 1e-4
"""Added to every hourly bound (pp): more than the single-precision rounding of two prices of
at most 1 (2 x 6e-8, x 100), so the arrays never make a bound smaller than the stored prices'."""
_CHUNK = 4_096
"""Outcomes whose spans are computed at once (bounds the arrays: a few MB each)."""


def _frame(
    values: NDArray[np.float32], oldest: int, newest: int, high: bool
) -> NDArray[np.float32]:
    """Per hour (column), the largest (``high``) or smallest value of the hours ``oldest`` to
    ``newest`` before it; ±infinity where there is none."""
    found = np.full_like(values, -np.inf if high else np.inf)
    pick = np.maximum if high else np.minimum
    for k in range(newest, oldest + 1):
        if k == 0:
            pick(found, values, out=found)
        elif k < values.shape[1]:
            pick(found[:, k:], values[:, :-k], out=found[:, k:])
    return found


class MoveBounds:
    """What the replay narrows its reads with, read once however many reads it makes: each
    eligible outcome's weight and largest range over the days a window reaches (``ohlc_1d``),
    then, for the outcomes a read could need, their hourly highs and lows (``ohlc_1h``), read
    on first use and kept.

    A move at an instant of hour ``h`` is a price now (the hours the staleness reaches back to
    ``h``) less a price then (:func:`bands`), so it is at most the larger of "highest now less
    lowest then" and "highest then less lowest now": an hour where that cannot reach a window's
    bar is not read. Both steps only drop hours where no move could reach the bar."""

    def __init__(
        self,
        conn: psycopg.AsyncConnection[Any],
        *,
        eligibility: Eligibility,
        windows: Mapping[str, timedelta],
        staleness: timedelta,
        since: datetime,
        until: datetime,
        least: float,
        database: Database | None = None,
    ) -> None:
        self.conn = conn
        self.database = database
        """Where a second connection comes from, to read the hours in two halves at once."""
        self.eligibility = eligibility
        self.windows = dict(windows)
        self.staleness = staleness
        self.since = since
        self.until = until
        self.least = least
        """The smallest move (pp) any read will ask about: outcomes that never range that far
        are never read."""
        self.reach = max(bands(w, staleness)[0] for w in self.windows.values())
        first = math.floor(since.timestamp() / 3600) * 3600
        self.first = first
        self.base = first - self.reach * 3600
        self.hours = max(math.ceil((until.timestamp() - self.base) / 3600), 1)
        self._days: dict[str, tuple[float, float]] | None = None
        self._row: dict[str, int] = {}
        # Single precision halves the arrays; MARGIN makes up for its rounding.
        self._high = np.empty((0, self.hours), dtype=np.float32)
        self._low = np.empty((0, self.hours), dtype=np.float32)

    async def days(self) -> dict[str, tuple[float, float]]:
        """Per outcome that could move ``least`` pp: its volume weight, its largest range."""
        if self._days is None:
            reach = timedelta(days=math.ceil(self.reach * HOUR / DAY))
            params = {
                "venues": list(self.eligibility.venues),
                "min_volume": list(self.eligibility.min_volume),
                "watched": list(self.eligibility.watched),
                "since": self.since,
                "until": self.until,
                "reach": reach,
                "least": self.least,
            }
            async with lent(self.conn), self.conn.cursor() as cur:
                # Its row estimates are far too high (window frames over views), so the planner
                # would compile it with JIT: seconds of compiling for a statement that runs in
                # less.
                await cur.execute("SET LOCAL jit = off")
                await cur.execute(_DAYS, params)
                self._days = {r[0]: (r[1], r[2]) for r in await cur.fetchall()}
        return self._days

    async def _read_hours(self, outcomes: Sequence[str]) -> None:
        """The hourly highs and lows of ``outcomes`` not read yet, added to the arrays."""
        missing = [o for o in outcomes if o not in self._row]
        if not missing:
            return
        start = len(self._row)
        self._row.update({o: start + n for n, o in enumerate(missing)})
        shape = (len(missing), self.hours)
        self._high = np.vstack([self._high, np.full(shape, -np.inf, dtype=np.float32)])
        self._low = np.vstack([self._low, np.full(shape, np.inf, dtype=np.float32)])
        # Two halves of the span at once, on the replay's connection and one more from the pool
        # when it has one: two server processes scan half the rows each.
        middle = self.base + self.hours // 2 * 3600
        for k in range(0, len(missing), _BATCH):
            batch = missing[k : k + _BATCH]
            if self.database is None:
                await self._read_half(self.conn, batch, self.base, self.until.timestamp())
            else:
                async with self.database.connection() as other:
                    await asyncio.gather(
                        self._read_half(self.conn, batch, self.base, middle),
                        self._read_half(other, batch, middle, self.until.timestamp()),
                    )

    async def _read_half(
        self, conn: psycopg.AsyncConnection[Any], outcomes: list[str], lo: float, hi: float
    ) -> None:
        params = {
            "outcomes": outcomes,
            "base": float(self.base),
            "lo": datetime.fromtimestamp(lo, UTC),
            "hi": datetime.fromtimestamp(hi, UTC),
        }
        async with lent(conn), conn.cursor() as cur:
            await cur.execute("SET LOCAL jit = off")
            # The answer is grouped in memory: about 12 KB an outcome (150,000 outcomes, of
            # which 28,000 could move: 210 MB for both halves), not spilled to disk.
            await cur.execute("SET LOCAL work_mem = '128MB'")
            await cur.execute(_HOURS, params)
            rows = await cur.fetchall()
        for outcome, data in rows:
            found = np.frombuffer(data, dtype=_HOUR_ROW)
            found = found[(found["h"] >= 0) & (found["h"] < self.hours)]
            self._high[self._row[outcome], found["h"]] = found["high"]
            self._low[self._row[outcome], found["h"]] = found["low"]

    async def spans(
        self,
        bars: Mapping[str, Mapping[datetime, float]],
        *,
        weighted: bool = False,
        min_abs: float = 0.0,
    ) -> list[Span]:
        """The spans of every eligible outcome and window where a move of at least ``min_abs``
        pp could reach the window's bar for the hour (``bars``: per window, hour start to bar; a
        move in pp, or with ``weighted`` a score), evaluated from ``since`` to ``until``."""
        labels = [label for label in self.windows if bars.get(label)]
        if not labels:
            return []
        least_bar = min(min(bars[label].values()) for label in labels)
        days = await self.days()
        picked = []
        for outcome, (weight, widest) in days.items():
            score = 100 * widest * (weight if weighted else 1.0)
            if 100 * widest >= min_abs - 1e-9 and score >= least_bar - 1e-9:
                picked.append(outcome)
        picked.sort()
        if not picked:
            return []
        await self._read_hours(picked)
        columns = self.hours - self.reach
        hour_bars = {}
        for label in labels:
            row = np.full(columns, np.inf)
            for hour, bar in bars[label].items():
                col = round((hour.timestamp() - self.first) / 3600)
                if 0 <= col < columns:
                    row[col] = bar
            hour_bars[label] = row
        now = (math.ceil(self.staleness / HOUR), 0)
        found: list[Span] = []
        for k in range(0, len(picked), _CHUNK):
            chunk = picked[k : k + _CHUNK]
            rows = [self._row[o] for o in chunk]
            high, low = self._high[rows], self._low[rows]
            weights = np.array([days[o][0] if weighted else 1.0 for o in chunk])[:, None]
            now_high = _frame(high, *now, True)[:, self.reach :]
            now_low = _frame(low, *now, False)[:, self.reach :]
            for label in labels:
                oldest, newest = bands(self.windows[label], self.staleness)
                then_high = _frame(high, oldest, newest, True)[:, self.reach :]
                then_low = _frame(low, oldest, newest, False)[:, self.reach :]
                move = 100 * np.maximum(now_high - then_low, then_high - now_low) + MARGIN
                flags = (move >= min_abs - 1e-9) & (move * weights >= hour_bars[label] - 1e-9)
                found += self._runs(chunk, label, flags)
        found.sort(key=lambda s: (s.outcome_id, s.window, s.start))
        return found

    def _runs(self, outcomes: Sequence[str], label: str, flags: NDArray[np.bool_]) -> list[Span]:
        """The flagged hours of each outcome merged into spans, cut to ``since`` and ``until``."""
        edges = np.diff(np.pad(flags.astype(np.int8), ((0, 0), (1, 1))), axis=1)
        starts = np.nonzero(edges == 1)
        ends = np.nonzero(edges == -1)[1]
        spans = []
        for row, start, end in zip(starts[0], starts[1], ends, strict=True):
            lo = datetime.fromtimestamp(self.first + 3600 * int(start), UTC)
            hi = datetime.fromtimestamp(self.first + 3600 * int(end), UTC)
            if hi > self.since:
                spans.append(
                    Span(outcomes[int(row)], label, max(lo, self.since), min(hi, self.until))
                )
        return spans


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
    bounds: MoveBounds,
    bars: Mapping[str, Mapping[datetime, float]],
    *,
    weighted: bool = False,
    min_abs: float = 0.0,
) -> list[Span]:
    """One read's spans (:meth:`MoveBounds.spans`), a function of its own so that the
    benchmark can time the reads one by one."""
    return await bounds.spans(bars, weighted=weighted, min_abs=min_abs)


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
        await cur.execute("SET LOCAL jit = off")  # as in MoveBounds.days
        await cur.execute(_ROWS, params)
        previous: tuple[str, float] | None = None
        for outcome_id, at, price, spread in await cur.fetchall():
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
