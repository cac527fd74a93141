"""What the signals read: the queue of market events (listings, status changes) the ``markets``
triggers fill, and the market an outcome belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

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

    async def describe(self, outcome_ids: Sequence[str]) -> dict[str, OutcomeInfo]:
        """The market, title, outcome name, category and link of each stored outcome."""
        if not outcome_ids:
            return {}
        async with self.database.connection() as conn:
            cur = await conn.execute(_DESCRIBE, (list(set(outcome_ids)),))
            return {row[0]: OutcomeInfo(*row) for row in await cur.fetchall()}
