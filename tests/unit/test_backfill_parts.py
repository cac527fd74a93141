"""The backfill's pure parts: requests cut to the venues' limits, halves of a refused request,
gaps filled at the heartbeat, duplicates dropped, answers written in short transactions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from exporter.config import validate_settings
from exporter.ingest.backfill import (
    Request,
    Target,
    _chunks,
    _halves,
    deduplicated,
    fill_gaps,
)
from exporter.ingest.common import Rejects
from exporter.ingest.history_sources import KalshiHistory, PolymarketHistory
from exporter.model import Snapshot
from exporter.storage.history import Covered
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.polymarket.client import PolymarketClient

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86_400


def _targets(n: int) -> list[Target]:
    return [Target(f"x:{i}", str(i)) for i in range(n)]


def _point(minutes: int, price: float = 0.5) -> Snapshot:
    return Snapshot(time=T0 + timedelta(minutes=minutes), outcome_id="x:1", price=price)


def test_kalshi_requests_hold_at_most_10000_candles_and_100_tickers() -> None:
    source = KalshiHistory(KalshiClient(validate_settings({}).venues.kalshi), Rejects())
    minute = timedelta(minutes=1)
    requests = source.requests(_targets(250), 0, 7 * DAY, minute)
    for r in requests:
        candles = ((r.end - r.start) // 60 + 1) * len(r.targets)
        assert candles <= 10_000
        assert len(r.targets) <= 100
    # Every target's whole range is asked, with no gap between windows.
    spans = sorted({(r.start, r.end) for r in requests})
    assert spans[0][0] == 0
    assert spans[-1][1] == 7 * DAY
    assert all(b[0] - a[1] == 60 for a, b in itertools.pairwise(spans))
    hourly = source.requests(_targets(250), 0, 7 * DAY, timedelta(hours=1))
    assert [len(r.targets) for r in hourly] == [59, 59, 59, 59, 14]  # 169 candles each


def test_polymarket_requests_hold_20_tokens_and_15_days() -> None:
    source = PolymarketHistory(PolymarketClient(validate_settings({}).venues.polymarket), Rejects())
    requests = source.requests(_targets(45), 0, 20 * DAY, timedelta(minutes=1))
    assert [len(r.targets) for r in requests] == [20, 20, 5] * 2
    assert {(r.start, r.end) for r in requests} == {(0, 15 * DAY), (15 * DAY, 20 * DAY)}


def test_a_refused_request_is_halved_by_targets_then_by_window() -> None:
    hour = timedelta(hours=1)
    wide = Request(tuple(_targets(3)), 0, 4 * DAY, hour)
    assert [len(h.targets) for h in _halves(wide)] == [1, 2]
    one = Request(tuple(_targets(1)), 0, 4 * DAY, hour)
    first, second = _halves(one)
    assert (first.start, first.end, second.start, second.end) == (0, 2 * DAY, 2 * DAY, 4 * DAY)


def test_gaps_are_filled_at_the_heartbeat_and_duplicates_dropped() -> None:
    points = [_point(0), _point(0, 0.6), _point(1), _point(35, 0.7)]
    cleaned = deduplicated(points)
    assert [(p.time.minute, p.price) for p in cleaned] == [(0, 0.6), (1, 0.5), (35, 0.7)]
    filled = fill_gaps(cleaned, timedelta(minutes=10))
    assert [p.time.minute for p in filled] == [0, 1, 11, 21, 31, 35]
    assert [p.price for p in filled] == [0.6, 0.5, 0.5, 0.5, 0.5, 0.7]


def test_answers_are_written_in_transactions_of_about_batch_rows_each_outcome_whole() -> None:
    rows = [_point(i) for i in range(25)]
    covered = [Covered(f"x:{i}", T0, T0, n) for i, n in enumerate((10, 0, 8, 7))]
    chunks = list(_chunks(rows, covered, 12))
    assert [(len(r), [c.outcome_id for c in cs]) for r, cs in chunks] == [
        (18, ["x:0", "x:1", "x:2"]),
        (7, ["x:3"]),
    ]
