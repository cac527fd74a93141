"""The canonical model and the pure parts of the writer."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from exporter.config import load_settings
from exporter.errors import ConfigError
from exporter.model import (
    Snapshot,
    Venue,
    displayed_price,
    market_id,
    outcome_id,
    owner,
    shard_of,
    venue_of,
)
from exporter.storage.changes import ChangeFilter
from exporter.storage.checks import check_snapshot
from exporter.storage.maintenance import ceil_time, floor_time

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_ids_are_prefixed_by_venue_and_keep_long_token_ids() -> None:
    token = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
    assert outcome_id(Venue.POLYMARKET, token) == f"polymarket:{token}"
    assert market_id(Venue.KALSHI, "KXBTC-26") == "kalshi:KXBTC-26"
    assert venue_of(f"polymarket:{token}") is Venue.POLYMARKET


@pytest.mark.parametrize(
    ("bid", "ask", "last", "price"),
    [
        (0.40, 0.42, 0.10, 0.41),  # tight spread: midpoint
        (0.40, 0.50, 0.10, 0.45),  # spread exactly 0.10: still the midpoint
        (0.30, 0.60, 0.52, 0.52),  # wide spread: last trade
        (0.30, 0.60, None, 0.45),  # wide, never traded: midpoint
        (None, 0.60, 0.52, 0.52),  # one side missing: last trade
        (None, None, None, None),
    ],
)
def test_displayed_price_rule(
    bid: float | None, ask: float | None, last: float | None, price: float | None
) -> None:
    result = displayed_price(bid, ask, last)
    assert result == pytest.approx(price) if price is not None else result is None


def _snap(minutes: float, price: float, **kw: float) -> Snapshot:
    return Snapshot(T0 + timedelta(minutes=minutes), "kalshi:K", price, **kw)  # type: ignore[arg-type]


def test_change_filter_keeps_changes_and_heartbeats_only() -> None:
    changes = ChangeFilter(timedelta(minutes=10))
    batch = [_snap(0, 0.5), _snap(1, 0.5), _snap(2, 0.51), _snap(12, 0.51), _snap(13, 0.51)]
    keep, unchanged, stale = changes.select(batch)
    assert [s.time for s in keep] == [T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=12)]
    assert (unchanged, stale) == (2, 0)


def test_change_filter_state_moves_only_when_told() -> None:
    changes = ChangeFilter(timedelta(minutes=10))
    keep, _, _ = changes.select([_snap(0, 0.5)])
    # Selected rows are in flight: a batch with the same quote meanwhile keeps nothing ...
    assert changes.select([_snap(1, 0.5)]) == ([], 1, 0)
    # ... and once their write ended unwritten (released), the quote is offered again.
    changes.release(keep)
    again, _, _ = changes.select([_snap(1, 0.5)])
    assert again != [], "nothing remembered before remember()"
    changes.release(again)
    changes.remember(keep)
    changes.release(keep)
    assert changes.select([_snap(1, 0.5)]) == ([], 1, 0)
    assert changes.select([_snap(0, 0.7)]) == ([], 0, 1)  # not newer than what was written
    assert len(changes.select([_snap(1, 0.5, bid=0.4)])[0]) == 1


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        (Snapshot(T0, "kalshi:K", 0.5), None),
        (Snapshot(T0, "kalshi:K", 1.0000001), "price_out_of_range"),
        (Snapshot(T0, "kalshi:K", float("inf")), "price_out_of_range"),
        (Snapshot(T0, "kalshi:K", 0.5, ask=float("nan")), "price_out_of_range"),
        (Snapshot(T0, "K", 0.5), "missing_id"),
        (Snapshot(T0.replace(tzinfo=None), "kalshi:K", 0.5), "naive_time"),
        (Snapshot(T0, "kalshi:K", 0.5, volume_24h=-1.0), "amount_out_of_range"),
    ],
)
def test_check_snapshot(snapshot: Snapshot, reason: str | None) -> None:
    assert check_snapshot(snapshot) == reason


def test_bucket_bounds_are_utc_aligned() -> None:
    moment = datetime(2026, 11, 20, 13, 47, 12, tzinfo=UTC)
    assert floor_time(moment, timedelta(hours=1)) == datetime(2026, 11, 20, 13, tzinfo=UTC)
    assert floor_time(moment, timedelta(days=1)) == datetime(2026, 11, 20, tzinfo=UTC)
    assert ceil_time(moment, timedelta(minutes=1)) == datetime(2026, 11, 20, 13, 48, tzinfo=UTC)
    assert ceil_time(T0, timedelta(minutes=1)) == T0


def test_a_markets_shard_is_stable_and_the_shards_even() -> None:
    """The owner of a market must never change between releases or machines (a change would
    move every market to another collector): these values are fixed."""
    assert shard_of("polymarket", "0xabc", 3) == 2
    assert shard_of(Venue.KALSHI, "KXFED-25DEC-T4", 3) == 2
    assert shard_of("kalshi", "KXFED-25DEC-T4", 64) == 36
    counts = Counter(shard_of("kalshi", f"T{i}", 3) for i in range(30_000))
    assert all(9_500 < n < 10_500 for n in counts.values()), counts
    mine = owner(Venue.KALSHI, 2, 3)
    assert mine("KXFED-25DEC-T4")
    assert not owner(Venue.KALSHI, 0, 3)("KXFED-25DEC-T4")
    assert owner(Venue.KALSHI, 0, 1)("anything")


def test_a_shard_index_past_the_count_or_an_auto_name_without_a_number_fails_naming_it() -> None:
    settings = load_settings(None, environ={
        "MOVERS__CLUSTER__COLLECTOR": "movers-2", "MOVERS__CLUSTER__SHARD__INDEX": "auto",
        "MOVERS__CLUSTER__SHARD__COUNT": "3",
    })  # fmt: skip
    assert settings.cluster.shard_index == 2
    for env, why in (
        ({"MOVERS__CLUSTER__SHARD__INDEX": "3", "MOVERS__CLUSTER__SHARD__COUNT": "3"},
         "3 is not below shard.count (3)"),
        ({"MOVERS__CLUSTER__SHARD__INDEX": "auto", "MOVERS__CLUSTER__COLLECTOR": "host"},
         "does not end in a number"),
    ):  # fmt: skip
        with pytest.raises(ConfigError, match=r"cluster\.shard\.index") as raised:
            load_settings(None, environ=env)
        assert why in str(raised.value)
