"""What the signals read: the queue of market events (listings, status changes) the ``markets``
triggers fill, and the market an outcome belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from exporter.storage.database import Database

_TAKE = """
WITH taken AS (
    DELETE FROM movers_internal.market_events
    WHERE id IN (SELECT id FROM movers_internal.market_events ORDER BY id LIMIT %(limit)s
                 FOR UPDATE SKIP LOCKED)
    RETURNING id, market_id, kind, status, previous, at
)
SELECT t.kind, t.status, t.previous, t.at, m.market_id, m.venue, m.title, m.category, m.url,
       m.listed_at, m.volume_24h, o.outcome_id, o.name, p.price, p.time
FROM taken t
JOIN markets m USING (market_id)
LEFT JOIN LATERAL (
    SELECT outcome_id, name FROM outcomes
    WHERE outcomes.market_id = m.market_id ORDER BY position LIMIT 1
) o ON true
LEFT JOIN LATERAL (
    -- The final price is only looked up for a status change (a listing has none yet).
    SELECT s.price, s.time FROM snapshots s
    WHERE t.kind = 'status' AND s.outcome_id = o.outcome_id
    ORDER BY s.time DESC LIMIT 1
) p ON true
ORDER BY t.id
"""

_DESCRIBE = """
SELECT o.outcome_id, m.market_id, m.title, o.name, m.category, m.url
FROM outcomes o JOIN markets m USING (market_id)
WHERE o.outcome_id = ANY(%s)
"""


_TRADE_SPAN = """
SELECT (SELECT time FROM trades ORDER BY time LIMIT 1),
       (SELECT time FROM trades ORDER BY time DESC LIMIT 1)
"""

_SPIKES = """
WITH recent AS (
    SELECT o.market_id, sum(t.price * t.size) AS volume, count(*) AS trades
    FROM trades t JOIN outcomes o USING (outcome_id)
    WHERE t.time > %(now)s - %(window)s AND t.time <= %(now)s
    GROUP BY o.market_id
)
SELECT m.market_id, m.venue, m.title, m.category, m.url, first.outcome_id, first.name,
       r.volume, r.trades, b.median
FROM recent r
JOIN markets m USING (market_id)
CROSS JOIN LATERAL (
    SELECT outcome_id, name FROM outcomes
    WHERE outcomes.market_id = m.market_id ORDER BY position LIMIT 1
) first
CROSS JOIN LATERAL (
    -- Window i (1..buckets) before the recent one; a window without trades is zero.
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY coalesce(h.volume, 0)) AS median
    FROM generate_series(1, %(buckets)s) g (i)
    LEFT JOIN (
        SELECT floor(extract(epoch FROM %(now)s - t.time) / %(window_seconds)s)::int AS i,
               sum(t.price * t.size) AS volume
        FROM trades t
        WHERE t.outcome_id IN (SELECT outcome_id FROM outcomes WHERE market_id = m.market_id)
          AND t.time > %(now)s - %(window)s * (%(buckets)s + 1)
          AND t.time <= %(now)s - %(window)s
        GROUP BY 1
    ) h ON h.i = g.i
) b
WHERE r.volume >= CASE m.venue WHEN 'polymarket' THEN %(polymarket)s ELSE %(kalshi)s END
  AND r.volume >= %(factor)s * b.median
ORDER BY r.volume DESC
LIMIT 200
"""


@dataclass(frozen=True, slots=True)
class VolumeSpike:
    market_id: str
    venue: str
    title: str
    category: str
    url: str | None
    outcome_id: str
    outcome: str
    volume: float
    """Traded notional over the window."""
    trades: int
    median: float
    """The median of the same notional over the baseline's windows."""


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """A market listed, or its status changed (``previous`` → ``status``)."""

    kind: str
    status: str
    previous: str | None
    at: datetime
    market_id: str
    venue: str
    title: str
    category: str
    url: str | None
    listed_at: datetime | None
    volume_24h: float | None
    outcome_id: str | None
    """The first outcome (YES)."""
    outcome: str | None
    """The first outcome's name (YES)."""
    price: float | None
    """The first outcome's last stored price (status changes only)."""
    price_time: datetime | None


@dataclass(frozen=True, slots=True)
class OutcomeInfo:
    outcome_id: str
    market_id: str
    title: str
    outcome: str
    category: str
    url: str | None


class SignalStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def take_events(self, limit: int = 5_000) -> list[MarketEvent]:
        """The oldest queued market events, removed from the queue in the same transaction (a
        failure leaves them queued)."""
        async with self.database.transaction() as conn:
            cur = await conn.execute(_TAKE, {"limit": limit})
            return [MarketEvent(*row) for row in await cur.fetchall()]

    async def trade_span(self) -> tuple[datetime | None, datetime | None]:
        """The oldest and newest stored trade's time."""
        async with self.database.connection() as conn:
            cur = await conn.execute(_TRADE_SPAN)
            row = await cur.fetchone()
            return (row[0], row[1]) if row is not None else (None, None)

    async def volume_spikes(
        self,
        now: datetime,
        window: timedelta,
        buckets: int,
        factor: float,
        floors: dict[str, float | None],
    ) -> list[VolumeSpike]:
        """Markets whose notional over the last ``window`` reaches the venue's floor and
        ``factor`` times its median over the ``buckets`` windows before (a venue whose floor is
        None is off)."""
        never = float("inf")
        params = {
            "now": now, "window": window, "window_seconds": window.total_seconds(),
            "buckets": buckets, "factor": factor,
            "polymarket": floors.get("polymarket") or never,
            "kalshi": floors.get("kalshi") or never,
        }  # fmt: skip
        async with self.database.connection() as conn:
            cur = await conn.execute(_SPIKES, params)
            return [VolumeSpike(*row) for row in await cur.fetchall()]

    async def describe(self, outcome_ids: Sequence[str]) -> dict[str, OutcomeInfo]:
        """The market, title, outcome name, category and link of each stored outcome."""
        if not outcome_ids:
            return {}
        async with self.database.connection() as conn:
            cur = await conn.execute(_DESCRIBE, (list(set(outcome_ids)),))
            return {row[0]: OutcomeInfo(*row) for row in await cur.fetchall()}
