"""Whole-column binary array parameters round-trip exactly through real servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exporter.storage.arrays import ADAPTERS, Float8Array, TextArray, TimestamptzArray
from tests.support.databases import Database

pytestmark = pytest.mark.db

TIMES = [
    datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the PostgreSQL epoch
    datetime(2026, 3, 8, 2, 30, tzinfo=timezone(timedelta(hours=-5))),  # not UTC
]
FLOATS = [0.0, 1.0, 0.4567891234, None, -0.0, 1e300, 5e-324]
TEXTS = ["polymarket:" + "7" * 78, "", "kalshi:KX-ÜBER-€", None, "a'b\"c"]


@pytest.mark.parametrize(
    ("marker", "cast", "values"),
    [
        (TimestamptzArray, "timestamptz[]", TIMES),
        (Float8Array, "float8[]", FLOATS),
        (TextArray, "text[]", TEXTS),
        (Float8Array, "float8[]", []),
        (TextArray, "text[]", [None, None]),
    ],
)
def test_round_trip(
    db: Database, marker: type[list[object]], cast: str, values: list[object]
) -> None:
    with db.connect(context=ADAPTERS) as conn:
        row = conn.execute(f"SELECT %b::{cast}", (marker(values),)).fetchone()  # type: ignore[call-arg]
    assert row is not None
    assert row[0] == values


def test_unnest_keeps_columns_aligned(db: Database) -> None:
    with db.connect(context=ADAPTERS) as conn:
        rows = conn.execute(
            "SELECT * FROM unnest(%b::timestamptz[], %b::float8[], %b::text[])",
            (TimestamptzArray(TIMES), Float8Array(FLOATS[:3]), TextArray(TEXTS[:3])),
        ).fetchall()
    assert rows == list(zip(TIMES, FLOATS[:3], TEXTS[:3], strict=True))
