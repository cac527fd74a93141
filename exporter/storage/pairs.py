"""What the cross-venue pairs read and keep: each pair's two markets as stored (found by the
references the pairs file uses), the ``pairs`` table Grafana joins with the candles, and the
latest price of each paired outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from exporter.storage.database import Database

_MARKETS = """
SELECT r.ref, m.market_id, m.status, m.title, m.url, o.outcome_id, o.name
FROM unnest(%(refs)s::text[], %(venues)s::text[]) AS r (ref, venue)
JOIN markets m ON m.venue = r.venue
              AND (m.native_id = r.ref OR (r.venue = 'polymarket' AND m.slug = r.ref))
JOIN outcomes o ON o.market_id = m.market_id
ORDER BY r.ref, o.position
"""

_LATEST = """
SELECT o.outcome_id, s.time, s.price
FROM unnest(%(outcomes)s::text[]) AS o (outcome_id)
CROSS JOIN LATERAL (
    SELECT time, price FROM snapshots
    WHERE outcome_id = o.outcome_id AND time > %(since)s
    ORDER BY time DESC LIMIT 1
) s
"""


@dataclass(frozen=True, slots=True)
class StoredMarket:
    """A market a pairs file names, as stored: its id, status, title, link and outcomes (id and
    name, in the venue's order)."""

    market_id: str
    status: str
    title: str
    url: str | None
    outcomes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class PairRow:
    pair_id: str
    label: str
    polymarket_market_id: str
    polymarket_outcome_id: str
    kalshi_market_id: str
    kalshi_outcome_id: str
    inverse: bool
    position: int


async def stored_markets(
    database: Database, references: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], StoredMarket]:
    """The stored market each ``(venue, reference)`` names (Polymarket: a condition id or a
    slug; Kalshi: a market ticker); a reference nothing matches is left out."""
    if not references:
        return {}
    params = {"refs": [r for _, r in references], "venues": [v for v, _ in references]}
    found: dict[tuple[str, str], StoredMarket] = {}
    outcomes: dict[tuple[str, str], list[tuple[str, str]]] = {}
    venue_of = {ref: venue for venue, ref in references}
    async with database.connection() as conn:
        rows = await (await conn.execute(_MARKETS, params)).fetchall()
    for ref, market_id, status, title, url, outcome_id, name in rows:
        key = (venue_of[ref], ref)
        outcomes.setdefault(key, []).append((outcome_id, name))
        found[key] = StoredMarket(market_id, status, title, url, ())
    return {
        key: StoredMarket(m.market_id, m.status, m.title, m.url, tuple(outcomes[key]))
        for key, m in found.items()
    }


async def keep_pairs(database: Database, rows: Sequence[PairRow]) -> None:
    """The ``pairs`` table as ``rows`` say, in one transaction."""
    async with database.transaction() as conn:
        await conn.execute("DELETE FROM pairs")
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO pairs (pair_id, label, polymarket_market_id, polymarket_outcome_id,"
                " kalshi_market_id, kalshi_outcome_id, inverse, position)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(r.pair_id, r.label, r.polymarket_market_id, r.polymarket_outcome_id,
                  r.kalshi_market_id, r.kalshi_outcome_id, r.inverse, r.position)
                 for r in rows],
            )  # fmt: skip


async def latest_prices(
    database: Database, outcomes: Sequence[str], since: datetime
) -> dict[str, tuple[datetime, float]]:
    """Each outcome's latest stored price after ``since`` (older ones are stale: left out)."""
    if not outcomes:
        return {}
    async with database.connection() as conn:
        rows = await (
            await conn.execute(_LATEST, {"outcomes": list(outcomes), "since": since})
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


_OPEN = """
SELECT m.venue, m.native_id, m.slug, m.title, m.category, m.end_time, m.url, o.name
FROM markets m
CROSS JOIN LATERAL (
    SELECT name FROM outcomes WHERE market_id = m.market_id ORDER BY position LIMIT 1
) o
WHERE m.status = 'open' AND m.venue = ANY(%(venues)s)
  AND (%(category)s::text IS NULL OR m.category = %(category)s::text)
ORDER BY m.venue, m.market_id
"""


@dataclass(frozen=True, slots=True)
class OpenMarket:
    """An open market as ``movers pairs suggest`` compares them: its reference (condition id
    or ticker), slug, title, category, end and first outcome's name."""

    venue: str
    native_id: str
    slug: str | None
    title: str
    category: str | None
    end: datetime | None
    url: str | None
    outcome: str


async def open_markets(database: Database, category: str | None = None) -> list[OpenMarket]:
    """Every open Polymarket and Kalshi market (of ``category`` when given)."""
    params = {"venues": ["polymarket", "kalshi"], "category": category}
    async with database.connection() as conn:
        rows = await (await conn.execute(_OPEN, params)).fetchall()
    return [OpenMarket(*row) for row in rows]
