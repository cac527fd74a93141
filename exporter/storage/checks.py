"""What the database would refuse, checked per row before a write: a bad row is counted and skipped
alone, never its batch."""

from __future__ import annotations

import math

from exporter.model import (
    Market,
    Outcome,
    Snapshot,
    Trade,
    is_probability,
)


def check_snapshot(row: Snapshot) -> str | None:
    """Why a snapshot cannot be stored, or None when it can."""
    if not row.outcome_id or ":" not in row.outcome_id:
        return "missing_id"
    if row.time.tzinfo is None:
        return "naive_time"
    # Comparisons alone: NaN fails every one, infinities fall outside (a hot path: every row).
    if not 0.0 <= row.price <= 1.0:
        return "price_out_of_range"
    for value in (row.bid, row.ask, row.last_trade):
        if value is not None and not 0.0 <= value <= 1.0:
            return "price_out_of_range"
    for amount in (row.volume_24h, row.liquidity):
        if amount is not None and not 0.0 <= amount < math.inf:
            return "amount_out_of_range"
    return None


def check_trade(row: Trade) -> str | None:
    """Why a trade cannot be stored, or None when it can."""
    if not row.outcome_id or ":" not in row.outcome_id or not row.trade_id:
        return "missing_id"
    if row.time.tzinfo is None:
        return "naive_time"
    if not is_probability(row.price):
        return "price_out_of_range"
    if not (math.isfinite(row.size) and row.size >= 0):
        return "amount_out_of_range"
    return None


def check_market(row: Market) -> str | None:
    """Why a market cannot be stored, or None when it can: the same domains as its snapshots'
    (a negative volume is refused here as it is there)."""
    if not row.market_id or ":" not in row.market_id:
        return "missing_id"
    texts = (row.title, row.category, row.url, row.event_id, row.event_title, row.slug, *row.tags)
    if any(text is not None and "\x00" in text for text in texts):
        return "text_nul"  # PostgreSQL stores no NUL; it used to fail the whole page
    for amount in (row.volume_total, row.volume_24h, row.liquidity, row.open_interest):
        if amount is not None and not 0.0 <= amount < math.inf:
            return "amount_out_of_range"
    return None


def check_outcome(row: Outcome) -> str | None:
    """Why an outcome cannot be stored, or None when it can."""
    if not row.outcome_id or ":" not in row.outcome_id:
        return "missing_id"
    if "\x00" in row.name or "\x00" in row.native_id:
        return "text_nul"
    return None
