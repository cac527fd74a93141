"""The writer against real servers: idempotence, change-only storage, bad-row isolation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from exporter.errors import StorageUnavailable
from exporter.model import (
    Market,
    MarketStatus,
    Outcome,
    Side,
    Snapshot,
    Trade,
    Venue,
    market_id,
    outcome_id,
)
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.migrate import MigrationReport
from exporter.storage.writer import Writer
from tests.support.databases import Database

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEARTBEAT = timedelta(minutes=10)


@pytest.fixture
async def store(db: Database) -> AsyncIterator[tuple[Writer, Database]]:
    settings = db.settings(storage={"heartbeat": "10m"})
    report: MigrationReport = prepare_schema(settings)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        yield Writer(pool, report.mode, HEARTBEAT), db
    finally:
        await pool.close()


def _snap(minutes: float, price: float, oid: str = "polymarket:111", **kw: Any) -> Snapshot:
    return Snapshot(time=T0 + timedelta(minutes=minutes), outcome_id=oid, price=price, **kw)


def _rows(db: Database, query: str = "SELECT time, outcome_id, price FROM snapshots") -> list[Any]:
    with db.connect() as conn:
        return conn.execute(query + " ORDER BY 1, 2").fetchall()


async def test_the_same_batch_twice_is_stored_once(store: tuple[Writer, Database]) -> None:
    writer, db = store
    batch = [_snap(0, 0.40), _snap(0, 0.55, "kalshi:ABC"), _snap(1, 0.41)]
    first = await writer.write_snapshots(batch)
    # A second writer has no memory of the first: the database itself must deduplicate.
    second = await Writer(writer.pool, writer.mode, HEARTBEAT).write_snapshots(batch)
    again = await writer.write_snapshots(batch)
    assert (first.written, first.duplicates) == (3, 0)
    assert (second.written, second.duplicates) == (0, 3)
    assert (again.written, again.duplicates) == (0, 3)
    assert len(_rows(db)) == 3


async def test_batches_overlapping_stored_rows_or_themselves_store_each_row_once(
    store: tuple[Writer, Database],
) -> None:
    writer, db = store
    # Batches go as plain INSERTs while they meet no duplicate; one that does is sent again
    # with ON CONFLICT, and so are the next ones until one comes back clean.
    rows = [_snap(i, 0.01 * i + 0.1, f"polymarket:{i % 3}") for i in range(8)]
    first = await writer.write_snapshots(rows[:5], change_only=False)
    overlapping = await writer.write_snapshots(rows[3:], change_only=False)
    repeated = await writer.write_snapshots([_snap(20, 0.5), _snap(20, 0.5)], change_only=False)
    assert "snapshots" in writer.upserting()
    clean = await writer.write_snapshots([_snap(21, 0.6)], change_only=False)
    assert "snapshots" not in writer.upserting()
    after = await writer.write_snapshots([_snap(22, 0.7)], change_only=False)
    assert [(r.written, r.duplicates) for r in (first, overlapping, repeated, clean, after)] == [
        (5, 0), (3, 2), (1, 1), (1, 0), (1, 0),
    ]  # fmt: skip
    assert len(_rows(db)) == 11


async def test_unchanged_price_writes_nothing_until_the_heartbeat(
    store: tuple[Writer, Database],
) -> None:
    writer, db = store
    results = [
        await writer.write_snapshots([_snap(0, 0.40, bid=0.39, ask=0.41)]),
        await writer.write_snapshots([_snap(1, 0.40, bid=0.39, ask=0.41)]),  # unchanged
        await writer.write_snapshots([_snap(9, 0.40, bid=0.39, ask=0.41)]),  # unchanged
        await writer.write_snapshots([_snap(10, 0.40, bid=0.39, ask=0.41)]),  # heartbeat due
        await writer.write_snapshots([_snap(11, 0.40, bid=0.38, ask=0.41)]),  # bid changed
    ]
    assert [r.written for r in results] == [1, 0, 0, 1, 1]
    assert [r.unchanged for r in results] == [0, 1, 1, 0, 0]
    assert [t for t, _, _ in _rows(db)] == [T0 + timedelta(minutes=m) for m in (0, 10, 11)]


async def test_restart_remembers_the_last_row_inside_the_heartbeat(
    store: tuple[Writer, Database],
) -> None:
    writer, _db = store
    now = datetime.now(UTC)
    await writer.write_snapshots([Snapshot(now - timedelta(minutes=2), "kalshi:K", 0.3)])
    restarted = Writer(writer.pool, writer.mode, HEARTBEAT)
    assert await restarted.prime() == 1
    result = await restarted.write_snapshots([Snapshot(now, "kalshi:K", 0.3)])
    assert (result.written, result.unchanged) == (0, 1)


async def test_a_restart_knows_each_venues_newest_rows_before_it_writes(
    store: tuple[Writer, Database],
) -> None:
    """The ingest-lag gauges read ``newest``: after a restart with unchanged prices (or during a
    venue outage) they must come from what is stored, older than the heartbeat included."""
    writer, _db = store
    now = datetime.now(UTC)
    await writer.write_snapshots([
        Snapshot(now - timedelta(hours=3), "kalshi:K", 0.3),
        Snapshot(now - timedelta(minutes=2), "polymarket:111", 0.5),
        Snapshot(now - timedelta(minutes=4), "polymarket:222", 0.5),
    ])  # fmt: skip
    await writer.write_trades([
        Trade(now - timedelta(minutes=7), "kalshi:K", Venue.KALSHI, "u-1", 0.3, 2.0, Side.BUY),
    ])  # fmt: skip
    restarted = Writer(writer.pool, writer.mode, HEARTBEAT)
    assert restarted.newest == {}
    await restarted.prime()
    assert restarted.newest == {
        ("snapshots", "kalshi"): now - timedelta(hours=3),
        ("snapshots", "polymarket"): now - timedelta(minutes=2),
        ("trades", "kalshi"): now - timedelta(minutes=7),
    }


async def test_a_bad_row_is_rejected_alone(store: tuple[Writer, Database]) -> None:
    writer, db = store
    batch = [
        _snap(0, 0.40),
        _snap(0, 1.5, "polymarket:222"),  # out of range
        _snap(0, float("nan"), "polymarket:333"),  # NaN
        _snap(0, 0.5, ""),  # missing id
        _snap(0, 0.5, "polymarket:444", bid=-0.1),
        _snap(0, 0.6, "polymarket:555"),
    ]
    result = await writer.write_snapshots(batch)
    assert result.written == 2
    assert result.rejected == {"price_out_of_range": 3, "missing_id": 1}
    assert [o for _, o, _ in _rows(db)] == ["polymarket:111", "polymarket:555"]


async def test_rows_the_database_refuses_are_isolated_by_bisection(
    store: tuple[Writer, Database],
) -> None:
    writer, db = store
    # A NUL byte passes our checks but PostgreSQL text cannot hold it: only the database knows.
    batch = [_snap(0, 0.1 * (i % 9) + 0.05, f"polymarket:{i}") for i in range(10)]
    batch[6] = _snap(0, 0.5, "polymarket:bad\x00id")
    result = await writer.write_snapshots(batch)
    assert result.written == 9
    assert sum(result.rejected.values()) == 1
    assert len(_rows(db)) == 9
    assert writer.totals[("snapshots", "polymarket", "written")] == 9


async def test_a_big_write_is_split_into_concurrent_statements(
    store: tuple[Writer, Database],
) -> None:
    writer, db = store
    if db.shared_session:
        pytest.skip("statements in flight at once need separate sessions")
    split = Writer(writer.pool, writer.mode, HEARTBEAT, batch_rows=100, concurrency=3)
    batch = [_snap(i // 50, 0.01 * (i % 97) + 0.01, f"polymarket:{i % 50}") for i in range(1000)]
    result = await split.write_snapshots(batch, change_only=False)
    assert result.written == 1000
    # One transaction per statement (xmin tells them apart), not one for the lot.
    assert len(_rows(db, "SELECT DISTINCT xmin::text, 0 FROM snapshots")) == 10

    later = [_snap(100 + i // 50, 0.5, f"polymarket:{i % 50}") for i in range(1000)]
    later[555] = _snap(0, 0.5, "polymarket:bad\x00id")  # refused by the server, in chunk 6
    result = await split.write_snapshots(later, change_only=False)
    assert (result.written, result.rejected_total) == (999, 1)
    again = await split.write_snapshots(batch + later, change_only=False)
    assert (again.written, again.duplicates, again.rejected_total) == (0, 1999, 1)
    assert len(_rows(db)) == 1999


async def test_trades_deduplicate_and_keep_bad_rows_out(store: tuple[Writer, Database]) -> None:
    writer, db = store
    trades = [
        Trade(T0, "polymarket:111", Venue.POLYMARKET, "0xabc:111:0", 0.4, 10.0, Side.BUY, "0xw1"),
        Trade(T0, "polymarket:111", Venue.POLYMARKET, "0xabc:111:1", 0.41, 5.0, Side.SELL),
        Trade(T0, "kalshi:K", Venue.KALSHI, "uuid-1", 0.3, 2.0, Side.BUY),
        Trade(T0, "kalshi:K", Venue.KALSHI, "uuid-2", 3.0, 2.0, Side.BUY),  # bad price
    ]
    first = await writer.write_trades(trades)
    second = await writer.write_trades(trades[:3])
    assert (first.written, first.rejected) == (3, {"price_out_of_range": 1})
    assert (second.written, second.duplicates) == (0, 3)
    rows = _rows(db, "SELECT trade_id, trader FROM trades")
    assert rows == [("0xabc:111:0", "0xw1"), ("0xabc:111:1", None), ("uuid-1", None)]


async def test_markets_and_outcomes_upsert_in_place(store: tuple[Writer, Database]) -> None:
    writer, db = store
    mid = market_id(Venue.POLYMARKET, "0xcond")
    token = "5247" * 19 + "12"  # 78 digits: more than any integer type holds
    market = Market(
        market_id=mid, venue=Venue.POLYMARKET, native_id="0xcond", title="Will it rain?",
        status=MarketStatus.OPEN, observed_at=T0, category="Weather & Climate",
        tags=("weather", "nyc"), volume_24h=1200.5,
    )  # fmt: skip
    outcome = Outcome(
        outcome_id(Venue.POLYMARKET, token), mid, Venue.POLYMARKET, token, "Yes", 0, T0
    )
    await writer.upsert_markets([market])
    await writer.upsert_outcomes([outcome])
    later = T0 + timedelta(hours=1)
    await writer.upsert_markets(
        [Market(**{**_fields(market), "status": MarketStatus.CLOSED, "observed_at": later})]
    )
    await writer.upsert_outcomes([Outcome(**{**_fields(outcome), "observed_at": later})])
    with db.connect() as conn:
        m = conn.execute(
            "SELECT status, first_seen, last_seen, tags, volume_24h FROM markets"
        ).fetchall()
        o = conn.execute(
            "SELECT outcome_id, native_id, first_seen, last_seen FROM outcomes"
        ).fetchall()
    assert m == [("closed", T0, later, ["weather", "nyc"], 1200.5)]
    assert o == [(f"polymarket:{token}", token, T0, later)]


def _fields(record: Any) -> dict[str, Any]:
    return msgspec.structs.asdict(record)


def test_an_unreachable_database_is_reported_without_its_password(db: Database) -> None:
    settings = db.settings(database={"url": "postgresql://nobody:hunter2@127.0.0.1:9/none"})
    with pytest.raises(StorageUnavailable) as info:
        prepare_schema(settings)
    assert "hunter2" not in str(info.value)
    assert "nobody:***@127.0.0.1:9" in str(info.value)


async def test_one_refused_market_costs_only_itself(store: tuple[Writer, Database]) -> None:
    """A NUL in one title (PostgreSQL stores none) or a negative volume used to fail the whole
    discovery page, and every later one: now that market is counted by reason and skipped, its
    outcomes refused with it, the rest of the page stored."""
    writer, db = store

    def market(n: int, **changes: Any) -> Market:
        return Market(**{
            "market_id": f"kalshi:M{n}", "venue": Venue.KALSHI, "native_id": f"M{n}",
            "title": f"Market {n}", "status": MarketStatus.OPEN, "observed_at": T0, **changes,
        })  # fmt: skip

    page = [market(1), market(2, title="Bad\x00title"), market(3, volume_24h=-5.0), market(4)]
    assert await writer.upsert_markets(page) == 2
    outcomes = [Outcome(f"kalshi:M{n}", f"kalshi:M{n}", Venue.KALSHI, f"M{n}", "Yes", 0, T0)
                for n in (1, 2, 3, 4)]  # fmt: skip
    assert await writer.upsert_outcomes(outcomes) == 2  # M2's and M3's market is not there
    with db.connect() as conn:
        stored = [r[0] for r in conn.execute("SELECT market_id FROM markets ORDER BY 1")]
        kept = [r[0] for r in conn.execute("SELECT outcome_id FROM outcomes ORDER BY 1")]
    assert stored == kept == ["kalshi:M1", "kalshi:M4"]
    assert writer.totals[("markets", "kalshi", "rejected:text_nul")] == 1
    assert writer.totals[("markets", "kalshi", "rejected:amount_out_of_range")] == 1
    assert writer.totals[("outcomes", "kalshi", "rejected:database_23503")] == 2
    # The next page is not blacked out by the bad one.
    assert await writer.upsert_markets([market(5), market(2, title="Bad\x00title")]) == 1


async def test_two_jobs_seeing_one_quote_at_once_store_it_once(
    store: tuple[Writer, Database],
) -> None:
    """kalshi_prices and kalshi_hot both saw the same quote and wrote at the same moment: one
    row per real change, whichever job saw it first."""
    writer, db = store
    first = [Snapshot(T0, "kalshi:K", 0.41, 0.40, 0.42)]
    second = [Snapshot(T0 + timedelta(seconds=1), "kalshi:K", 0.41, 0.40, 0.42)]
    results = await asyncio.gather(writer.write_snapshots(first), writer.write_snapshots(second))
    assert sorted(r.written for r in results) == [0, 1]
    assert len(_rows(db)) == 1
    # A failed write releases its reservation: the same quote is offered again in full.
    changed = [Snapshot(T0 + timedelta(seconds=2), "kalshi:K", 0.45, 0.44, 0.46)]
    writer.changes.select(changed)
    writer.changes.release(changed)
    assert (await writer.write_snapshots(changed)).written == 1


async def test_a_missing_last_trade_is_unknown_not_a_change(
    store: tuple[Writer, Database],
) -> None:
    """A book (no last trade) and Gamma's fields (one) alternating on an unchanged outcome."""
    writer, db = store
    for i in range(6):
        last = 0.41 if i % 2 == 0 else None
        await writer.write_snapshots([_snap(i / 10, 0.41, bid=0.40, ask=0.42, last_trade=last)])
    assert len(_rows(db)) == 1
    await writer.write_snapshots([_snap(1, 0.41, bid=0.40, ask=0.42, last_trade=0.43)])
    assert len(_rows(db)) == 2  # a different last trade is a change
