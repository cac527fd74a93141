"""The writer's statements and the columns they take (whole-column binary arrays)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, LiteralString

from exporter.model import (
    Snapshot,
    Trade,
)
from exporter.storage.arrays import Float8Array, TextArray, TimestamptzArray


@dataclass(frozen=True, slots=True)
class Insert:
    """A bulk insert in two forms: ``plain`` while the table's recent batches held no duplicate
    (no speculative insertion: about a third cheaper on the server), and ``idempotent`` (``ON
    CONFLICT DO NOTHING``) after one did, or when the plain form met a duplicate key."""

    plain: LiteralString
    idempotent: LiteralString


# The arrays are unnested in the select list (in lockstep, equal lengths): a ProjectSet, about
# three times cheaper than ``FROM unnest(a, b, …)``, whose function scan materialises each.
_SNAPSHOT_ROWS: LiteralString = """
INSERT INTO snapshots (time, outcome_id, price, bid, ask, last_trade, volume_24h, liquidity)
SELECT unnest(%(time)b::timestamptz[]), unnest(%(outcome_id)b::text[]),
       unnest(%(price)b::float8[]), unnest(%(bid)b::float8[]), unnest(%(ask)b::float8[]),
       unnest(%(last_trade)b::float8[]), unnest(%(volume_24h)b::float8[]),
       unnest(%(liquidity)b::float8[])
"""
_SNAPSHOT_CONFLICT: LiteralString = "ON CONFLICT (outcome_id, time) DO NOTHING\n"
SNAPSHOT_INSERT = Insert(_SNAPSHOT_ROWS, _SNAPSHOT_ROWS + _SNAPSHOT_CONFLICT)
# Where the exporter runs the rollups, rows below a watermark (late data) are noted in the same
# statement so the next rollup re-rolls their buckets.
_NOTE_LATE: LiteralString = """
WITH late AS (
    INSERT INTO movers_internal.rollup_invalidations (name, lo, hi)
    SELECT 'ohlc_1m', %(lo)b, %(hi)b
    WHERE %(lo)b < (SELECT max(watermark) FROM movers_internal.rollup_state)
)"""
SNAPSHOT_INSERT_NOTING_LATE = Insert(
    _NOTE_LATE + _SNAPSHOT_ROWS, _NOTE_LATE + _SNAPSHOT_ROWS + _SNAPSHOT_CONFLICT
)
# The history backfill's points: marked as such, never over a row already there (live or not).
_HISTORY_ROWS: LiteralString = """
INSERT INTO snapshots (time, outcome_id, price, bid, ask, last_trade, volume_24h, liquidity,
                       source)
SELECT unnest(%(time)b::timestamptz[]), unnest(%(outcome_id)b::text[]),
       unnest(%(price)b::float8[]), unnest(%(bid)b::float8[]), unnest(%(ask)b::float8[]),
       unnest(%(last_trade)b::float8[]), unnest(%(volume_24h)b::float8[]),
       unnest(%(liquidity)b::float8[]), 'backfill'
ON CONFLICT (outcome_id, time) DO NOTHING
"""
HISTORY_INSERT: LiteralString = _HISTORY_ROWS
_TRADE_ROWS: LiteralString = """
INSERT INTO trades (time, outcome_id, venue, trade_id, price, size, side, trader)
SELECT unnest(%(time)b::timestamptz[]), unnest(%(outcome_id)b::text[]),
       unnest(%(venue)b::text[]), unnest(%(trade_id)b::text[]), unnest(%(price)b::float8[]),
       unnest(%(size)b::float8[]), unnest(%(side)b::text[]), unnest(%(trader)b::text[])
"""
TRADE_INSERT = Insert(_TRADE_ROWS, _TRADE_ROWS + "ON CONFLICT (venue, trade_id, time) DO NOTHING\n")
NEWEST: dict[str, LiteralString] = {
    "snapshots": "SELECT time FROM snapshots WHERE outcome_id LIKE %s ORDER BY time DESC LIMIT 1",
    "trades": "SELECT time FROM trades WHERE venue = %s ORDER BY time DESC LIMIT 1",
}
"""Each table's newest row time for one venue (outcome ids start with the venue's name)."""
MARKET_UPSERT = """
INSERT INTO markets AS m (market_id, venue, native_id, title, category, status, url, event_id,
                          event_title, slug, end_time, volume_total, volume_24h, liquidity,
                          open_interest, tags, first_seen, last_seen, listed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (market_id) DO UPDATE SET
    native_id = EXCLUDED.native_id, title = EXCLUDED.title, category = EXCLUDED.category,
    status = EXCLUDED.status, url = EXCLUDED.url, event_id = EXCLUDED.event_id,
    event_title = EXCLUDED.event_title, slug = EXCLUDED.slug, end_time = EXCLUDED.end_time,
    volume_total = EXCLUDED.volume_total, volume_24h = EXCLUDED.volume_24h,
    liquidity = EXCLUDED.liquidity, open_interest = EXCLUDED.open_interest, tags = EXCLUDED.tags,
    last_seen = greatest(m.last_seen, EXCLUDED.last_seen),
    listed_at = coalesce(EXCLUDED.listed_at, m.listed_at), updated_at = now()
"""
OUTCOME_UPSERT = """
INSERT INTO outcomes AS o (outcome_id, market_id, venue, native_id, name, position, first_seen,
                           last_seen)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (outcome_id) DO UPDATE SET
    market_id = EXCLUDED.market_id, native_id = EXCLUDED.native_id, name = EXCLUDED.name,
    position = EXCLUDED.position, last_seen = greatest(o.last_seen, EXCLUDED.last_seen)
"""


BY_TIME = operator.attrgetter("time")
_SNAPSHOT_FIELDS = {
    name: operator.attrgetter(name)
    for name in ("price", "bid", "ask", "last_trade", "volume_24h", "liquidity")
}


def snapshot_columns(rows: Sequence[Snapshot]) -> dict[str, list[Any]]:
    """Column arrays for the ``unnest`` insert, as whole-column binary parameters."""
    columns: dict[str, list[Any]] = {
        "time": TimestamptzArray(r.time for r in rows),
        "outcome_id": TextArray(r.outcome_id for r in rows),
    }
    for name, getter in _SNAPSHOT_FIELDS.items():
        columns[name] = Float8Array(map(getter, rows))
    return columns


def trade_columns(rows: Sequence[Trade]) -> dict[str, list[Any]]:
    return {
        "time": TimestamptzArray(r.time for r in rows),
        "outcome_id": TextArray(r.outcome_id for r in rows),
        "venue": TextArray(r.venue.value for r in rows),
        "trade_id": TextArray(r.trade_id for r in rows),
        "price": Float8Array(r.price for r in rows),
        "size": Float8Array(r.size for r in rows),
        "side": TextArray(r.side.value if r.side else None for r in rows),
        "trader": TextArray(r.trader for r in rows),
    }


def snapshot_columns_with_range(rows: Sequence[Snapshot]) -> dict[str, Any]:
    """Columns plus the batch's time range, for noting late rows."""
    data: dict[str, Any] = dict(snapshot_columns(rows))
    data["lo"] = min(data["time"])
    data["hi"] = max(data["time"])
    return data
