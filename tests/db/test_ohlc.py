"""OHLC of a known price path, hand-computed, on every rung of the capability ladder.

The same expectations are asserted for continuous aggregates (TimescaleDB), for exporter-managed
rollups on hypertables (Apache-only) and on plain PostgreSQL: the paths give identical OHLC,
including the newest buckets that only the real-time part covers, and late rows are re-rolled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from exporter.config import Settings
from exporter.errors import StorageError
from exporter.model import Snapshot
from exporter.service import maintain
from exporter.storage.database import Database as Facade
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.history import HistoryStore
from exporter.storage.maintenance import apply_retention, floor_time, run_rollups
from exporter.storage.migrate import Mode
from exporter.storage.turns import Turns
from exporter.storage.writer import Writer
from tests.support.databases import Database

pytestmark = pytest.mark.db

OUTCOME = "polymarket:42"
DAY = floor_time(datetime.now(UTC) - timedelta(days=3), timedelta(days=1))
NEXT_DAY = DAY + timedelta(days=1)
# Materialised up to NEXT_DAY; everything after it is only in the real-time part.
CUTOFF = NEXT_DAY

PATH = [  # (offset from DAY, price)
    (timedelta(seconds=10), 0.40),
    (timedelta(seconds=40), 0.45),
    (timedelta(seconds=50), 0.42),
    (timedelta(minutes=1, seconds=30), 0.50),
    (timedelta(hours=1, minutes=15), 0.30),
    (timedelta(days=1, hours=12), 0.60),  # real-time only
    (timedelta(days=1, hours=12, seconds=20), 0.58),  # real-time only
]


def _bucket(offset: timedelta) -> datetime:
    return DAY + offset


# (bucket, open, high, low, close, bid, ask, samples); bid/ask are price -/+ 0.01 of the last row.
EXPECTED = {
    "ohlc_1m": [
        (_bucket(timedelta(0)), 0.40, 0.45, 0.40, 0.42, 0.42 - 0.01, 0.42 + 0.01, 3),
        (_bucket(timedelta(minutes=1)), 0.50, 0.50, 0.50, 0.50, 0.50 - 0.01, 0.50 + 0.01, 1),
        (_bucket(timedelta(hours=1, minutes=15)), 0.30, 0.30, 0.30, 0.30, 0.29, 0.31, 1),
        (_bucket(timedelta(days=1, hours=12)), 0.60, 0.60, 0.58, 0.58, 0.58 - 0.01, 0.59, 2),
    ],
    "ohlc_1h": [
        (_bucket(timedelta(0)), 0.40, 0.50, 0.40, 0.50, 0.50 - 0.01, 0.50 + 0.01, 4),
        (_bucket(timedelta(hours=1)), 0.30, 0.30, 0.30, 0.30, 0.29, 0.31, 1),
        (_bucket(timedelta(days=1, hours=12)), 0.60, 0.60, 0.58, 0.58, 0.58 - 0.01, 0.59, 2),
    ],
    "ohlc_1d": [
        (_bucket(timedelta(0)), 0.40, 0.50, 0.30, 0.30, 0.29, 0.31, 5),
        (_bucket(timedelta(days=1)), 0.60, 0.60, 0.58, 0.58, 0.58 - 0.01, 0.59, 2),
    ],
}


@dataclass
class Ladder:
    db: Database
    mode: Mode
    writer: Writer

    async def materialise(self, upto: datetime) -> None:
        """Refresh every aggregate up to ``upto``, the way each rung does it."""
        if self.mode is Mode.TIMESCALE:
            with self.db.connect(autocommit=True) as conn:
                for view in ("ohlc_1m", "ohlc_1h", "ohlc_1d"):
                    conn.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, %s)", (upto,))
            return
        async with self.writer.pool.connection() as conn:
            await run_rollups(conn, _rolling(self.db).storage, now=upto)

    def read(self, view: str) -> list[tuple[Any, ...]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                f"SELECT bucket, open, high, low, close, bid, ask, samples FROM {view}"
                " WHERE outcome_id = %s ORDER BY bucket",
                (OUTCOME,),
            ).fetchall()
        return [tuple(r) for r in rows]

    def materialised(self, view: str) -> int:
        """How many of the view's rows come from materialisation rather than live computation."""
        with self.db.connect() as conn:
            if self.mode is Mode.TIMESCALE:
                found = conn.execute(
                    "SELECT format('%%I.%%I', materialization_hypertable_schema,"
                    " materialization_hypertable_name)"
                    " FROM timescaledb_information.continuous_aggregates WHERE view_name = %s",
                    (view,),
                ).fetchone()
                assert found is not None
                row = conn.execute(f"SELECT count(*) FROM {found[0]}").fetchone()
            else:
                row = conn.execute(f"SELECT count(*) FROM movers_internal.{view}_store").fetchone()
        assert row is not None
        return int(row[0])


def _rolling(db: Database) -> Settings:
    """Rollups of every complete bucket, and nothing retired: the path's days are kept."""
    return db.settings(
        storage={
            "refresh": {
                name: {"start_offset": "30d", "end_offset": "0s", "every": "1m"}
                for name in ("ohlc_1m", "ohlc_1h", "ohlc_1d")
            },
            "retention": {"snapshots": "60d", "ohlc_1m": "60d", "ohlc_1h": "60d"},
        }
    )


@pytest.fixture(params=["plain", "hypertable", "timescale"])
async def ladder(request: pytest.FixtureRequest) -> AsyncIterator[Ladder]:
    rung = Mode(request.param)
    db: Database = request.getfixturevalue("pg" if rung is Mode.PLAIN else "ts")
    settings = db.settings()
    report = prepare_schema(settings, force_mode=rung)
    assert report.mode is rung
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        yield Ladder(db, rung, Writer(pool, rung, timedelta(minutes=10)))
    finally:
        await pool.close()


def _snapshots(path: list[tuple[timedelta, float]]) -> list[Snapshot]:
    return [
        Snapshot(DAY + offset, OUTCOME, price, bid=price - 0.01, ask=price + 0.01)
        for offset, price in path
    ]


async def test_known_path_gives_hand_computed_ohlc(ladder: Ladder) -> None:
    result = await ladder.writer.write_snapshots(_snapshots(PATH))
    assert result.written == len(PATH)
    # Before any refresh everything is real-time.
    for view, expected in EXPECTED.items():
        assert ladder.read(view) == expected, view
    await ladder.materialise(CUTOFF)
    assert ladder.materialised("ohlc_1m") == 3
    assert ladder.materialised("ohlc_1d") == 1
    for view, expected in EXPECTED.items():
        assert ladder.read(view) == expected, view


async def test_late_rows_are_rolled_into_materialised_buckets(ladder: Ladder) -> None:
    await ladder.writer.write_snapshots(_snapshots(PATH))
    await ladder.materialise(CUTOFF)
    late = Snapshot(DAY + timedelta(seconds=5), OUTCOME, 0.35, bid=0.34, ask=0.36)
    assert (await ladder.writer.write_snapshots([late], change_only=False)).written == 1
    await ladder.materialise(CUTOFF)
    first_minute = ladder.read("ohlc_1m")[0]
    first_hour = ladder.read("ohlc_1h")[0]
    first_day = ladder.read("ohlc_1d")[0]
    assert first_minute[1:4] == (0.35, 0.45, 0.35)
    assert first_minute[-1] == 4
    assert first_hour[1:4] == (0.35, 0.50, 0.35)
    assert first_hour[-1] == 5
    assert first_day[1:4] == (0.35, 0.50, 0.30)
    assert first_day[-1] == 6


async def test_rollups_are_idempotent(ladder: Ladder) -> None:
    await ladder.writer.write_snapshots(_snapshots(PATH))
    await ladder.materialise(CUTOFF)
    once = {view: ladder.read(view) for view in EXPECTED}
    await ladder.materialise(CUTOFF)
    assert {view: ladder.read(view) for view in EXPECTED} == once


async def test_exporter_retention_keeps_aggregates(pg: Database) -> None:
    settings = pg.settings()
    report = prepare_schema(settings)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        writer = Writer(pool, report.mode, timedelta(minutes=10))
        now = datetime.now(UTC)
        old = [Snapshot(now - timedelta(days=d), OUTCOME, 0.5 + d / 100) for d in range(0, 21, 2)]
        await writer.write_snapshots(old, change_only=False)
        async with pool.connection() as conn:
            # Rows are materialised while fresh (as the scheduled rollup does), then retention
            # removes the raw rows older than 14 days and the aggregate rows stay.
            await run_rollups(conn, settings.storage, now=now - timedelta(days=13))
            await run_rollups(conn, settings.storage, now=now)
            removed = await apply_retention(conn, settings.storage, report.mode, now=now)
    finally:
        await pool.close()
    assert removed["snapshots"] == 3  # 16, 18 and 20 days old
    with psycopg.connect(pg.url) as conn:
        raw = conn.execute("SELECT count(*) FROM snapshots").fetchone()
        minutes = conn.execute("SELECT count(*) FROM ohlc_1m").fetchone()
    assert raw == (8,)
    assert minutes == (11,)


async def test_late_rows_are_noted_while_a_rollup_runs(pg: Database) -> None:
    """A rollup re-rolling days of backfilled history runs for minutes in one transaction:
    the late rows written meanwhile (a flush after an outage, the backfill's note of its range)
    are noted without waiting for it, and the next rollup takes them in."""
    settings = pg.settings()
    report = prepare_schema(settings, force_mode=Mode.PLAIN)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    ladder = Ladder(pg, Mode.PLAIN, Writer(pool, Mode.PLAIN, timedelta(minutes=10)))
    history = HistoryStore(Facade(pool), report.mode)
    try:
        await ladder.writer.write_snapshots(_snapshots(PATH))
        await ladder.materialise(CUTOFF)
        first = Snapshot(DAY + timedelta(seconds=5), OUTCOME, 0.35, bid=0.34, ask=0.36)
        await ladder.writer.write_snapshots([first], change_only=False)
        with pg.connect() as blocker:
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE movers_internal.ohlc_1m_store IN SHARE MODE")
            rolling = asyncio.create_task(ladder.materialise(CUTOFF))
            with pg.connect(autocommit=True) as watch:
                for _ in range(100):  # until the rollup holds its level and waits on the store
                    waiting = watch.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND query LIKE 'DELETE FROM %%ohlc_1m_store%%'"
                    ).fetchone()
                    if waiting == (1,):
                        break
                    await asyncio.sleep(0.05)
                else:
                    pytest.fail("the rollup never reached the store")
            second = Snapshot(DAY + timedelta(seconds=2), OUTCOME, 0.33, bid=0.32, ask=0.34)
            written = await asyncio.wait_for(
                ladder.writer.write_snapshots([second], change_only=False), 5
            )
            assert written.written == 1
            await asyncio.wait_for(history.refresh_aggregates(DAY, DAY + timedelta(hours=2)), 5)
            assert not rolling.done()
            blocker.execute("COMMIT")
        await asyncio.wait_for(rolling, 30)
        await ladder.materialise(CUTOFF)
    finally:
        await pool.close()
    assert ladder.read("ohlc_1m")[0][1:4] == (0.33, 0.45, 0.33)
    assert ladder.read("ohlc_1d")[0][1:4] == (0.33, 0.50, 0.30)


@pytest.mark.parametrize("by", ["rollups", "service"])
async def test_a_long_re_roll_goes_in_steps_that_each_commit(pg: Database, by: str) -> None:
    """Late rows hours apart (a backfilled week, in small) are re-rolled an hour of minutes a
    transaction: when a step fails, the steps before it stay committed and the rest stays
    noted, so the next rollup finishes the job. Also by the service's maintenance pass, which
    reads the server's clock first (that read once left a transaction open: every step was a
    savepoint of one transaction lasting the whole re-roll)."""
    settings = _rolling(pg)
    prepare_schema(settings, force_mode=Mode.PLAIN)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    ladder = Ladder(pg, Mode.PLAIN, Writer(pool, Mode.PLAIN, timedelta(minutes=10)))
    refused = DAY + timedelta(hours=2, minutes=30)
    try:
        await ladder.writer.write_snapshots(_snapshots(PATH))
        await ladder.materialise(CUTOFF)
        late = [
            Snapshot(DAY + timedelta(seconds=5), OUTCOME, 0.35, bid=0.34, ask=0.36),
            Snapshot(refused + timedelta(seconds=1), OUTCOME, 0.20, bid=0.19, ask=0.21),
        ]
        await ladder.writer.write_snapshots(late, change_only=False)
        with pg.connect(autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON movers_internal.ohlc_1m_store"
                f" FOR EACH ROW WHEN (NEW.bucket = '{refused.isoformat()}')"
                " EXECUTE FUNCTION refuse()"
            )
        rolling = (
            ladder.materialise(CUTOFF) if by == "rollups" else maintain(pool, settings, Mode.PLAIN)
        )
        with pytest.raises((psycopg.errors.RaiseException, StorageError), match="refused"):
            await rolling
        # The first hour's step committed before the third failed.
        assert ladder.read("ohlc_1m")[0][1:4] == (0.35, 0.45, 0.35)
        with pg.connect(autocommit=True) as conn:
            conn.execute("DROP TRIGGER refuse ON movers_internal.ohlc_1m_store")
        await ladder.materialise(CUTOFF)
    finally:
        await pool.close()
    assert (refused, 0.20) in [(r[0], r[1]) for r in ladder.read("ohlc_1m")]
    assert ladder.materialised("ohlc_1m") == 4
    assert ladder.read("ohlc_1h")[0][1:4] == (0.35, 0.50, 0.35)
    assert ladder.read("ohlc_1d")[0][1:4] == (0.35, 0.50, 0.20)


class Counted(Turns):
    """Turns that count the background steps taken."""

    def __init__(self) -> None:
        super().__init__()
        self.steps = 0

    @asynccontextmanager
    async def step(self) -> AsyncIterator[None]:
        async with super().step():
            self.steps += 1
            yield


async def test_rollup_steps_wait_while_the_movers_refresh_runs(pg: Database) -> None:
    """The maintenance's re-roll takes no step while this process's movers refresh runs (they
    would share the cores); it goes on once the refresh is over."""
    settings = _rolling(pg)
    prepare_schema(settings, force_mode=Mode.PLAIN)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    ladder = Ladder(pg, Mode.PLAIN, Writer(pool, Mode.PLAIN, timedelta(minutes=10)))
    turns = Counted()
    try:
        await ladder.writer.write_snapshots(_snapshots(PATH))
        await ladder.materialise(CUTOFF)
        late = Snapshot(DAY + timedelta(seconds=5), OUTCOME, 0.35, bid=0.34, ask=0.36)
        await ladder.writer.write_snapshots([late], change_only=False)
        async with turns.refresh(60.0):
            rolling = asyncio.create_task(maintain(pool, settings, Mode.PLAIN, turns))
            await asyncio.sleep(0.5)
            assert not rolling.done()
            assert turns.steps == 0
            assert ladder.read("ohlc_1m")[0][1:4] == (0.40, 0.45, 0.40)
        await asyncio.wait_for(rolling, 30)
    finally:
        await pool.close()
    assert turns.steps >= 3  # a step a level at least
    assert ladder.read("ohlc_1m")[0][1:4] == (0.35, 0.45, 0.35)
    assert ladder.read("ohlc_1d")[0][1:4] == (0.35, 0.50, 0.30)


async def test_timescale_refreshes_a_backfilled_range_in_steps_after_the_movers_refresh(
    ts: Database,
) -> None:
    """After a backfill pass TimescaleDB's aggregates are refreshed over the range it wrote, in
    steps of at most STEP_BUCKETS buckets, none while the movers refresh runs."""
    settings = ts.settings()
    report = prepare_schema(settings, force_mode=Mode.TIMESCALE)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    ladder = Ladder(ts, report.mode, Writer(pool, report.mode, timedelta(minutes=10)))
    turns = Counted()
    history = HistoryStore(Facade(pool), report.mode, turns)
    try:
        await ladder.writer.write_snapshots(_snapshots(PATH[:5]))
        async with turns.refresh(60.0):
            refreshing = asyncio.create_task(
                history.refresh_aggregates(DAY, DAY + timedelta(hours=1, minutes=15))
            )
            await asyncio.sleep(0.5)
            assert not refreshing.done()
            assert turns.steps == 0
        await asyncio.wait_for(refreshing, 120)
    finally:
        await pool.close()
    # ohlc_1m: the 76 minutes DAY .. 01:16 in two steps; ohlc_1h and ohlc_1d in one each.
    assert turns.steps == 4
    assert ladder.materialised("ohlc_1m") == 3
    assert ladder.materialised("ohlc_1h") == 2
    assert ladder.materialised("ohlc_1d") == 1
    for view, rows in {"ohlc_1m": 3, "ohlc_1h": 2, "ohlc_1d": 1}.items():
        assert ladder.read(view) == EXPECTED[view][:rows], view
