"""A database outage loses nothing: the writer holds rows (bounded), then writes them in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from exporter.config import validate_settings
from exporter.errors import StorageUnavailable
from exporter.model import Snapshot, Trade, Venue
from exporter.storage.writer import Writer
from tests.support.ingest import migrated_writer
from tests.support.servers import NativePostgres, running_postgres

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def cluster() -> Iterator[NativePostgres]:
    with running_postgres(("fsync=off",)) as server:
        yield server


@pytest.fixture
async def writer(cluster: NativePostgres) -> AsyncIterator[Writer]:
    settings = validate_settings(
        {"database": {"url": cluster.url, "connect_timeout": 1, "outage_buffer_rows": 50}}
    )
    async with migrated_writer(settings) as migrated:
        yield migrated


def _snaps(start: int, count: int) -> list[Snapshot]:
    return [
        Snapshot(T0 + timedelta(seconds=start + i), f"polymarket:{i % 3}", 0.01 * (start + i))
        for i in range(count)
    ]


def _stored(cluster: NativePostgres) -> list[float]:
    with psycopg.connect(cluster.url) as conn:
        rows = conn.execute("SELECT price FROM snapshots ORDER BY time").fetchall()
    return [round(p * 100) for (p,) in rows]


async def _flush_when_back(writer: Writer) -> int:
    """Flush, trying again while the pool is still backing off from the outage."""
    for _ in range(40):
        try:
            return await writer.flush()
        except StorageUnavailable:
            await asyncio.sleep(0.25)
    raise AssertionError("the database did not come back")


async def test_rows_written_during_an_outage_arrive_in_order_once_it_ends(
    cluster: NativePostgres, writer: Writer
) -> None:
    late: list[datetime] = []
    writer.stored_listeners.append(late.append)
    assert (await writer.write_snapshots(_snaps(0, 10))).written == 10
    cluster.stop()
    held = await writer.write_snapshots(_snaps(10, 10))
    assert (held.written, held.buffered) == (0, 10)
    trade = Trade(T0, "polymarket:1", Venue.POLYMARKET, "t1", 0.5, 3.0)
    assert (await writer.write_trades([trade])).buffered == 1
    assert (await writer.write_snapshots(_snaps(20, 5))).buffered == 5
    assert len(writer.backlog) == 16
    assert writer.backlog.rows["snapshots"] == 15
    assert late == [T0]  # the first write's oldest row; nothing while the rows are held
    cluster.start()
    assert await _flush_when_back(writer) == 16
    # Then each held statement's oldest row.
    assert late == [T0, T0 + timedelta(seconds=10), T0 + timedelta(seconds=20)]
    assert len(writer.backlog) == 0
    after = await writer.write_snapshots(_snaps(25, 5))
    assert after.written == 5
    assert _stored(cluster) == list(range(30))
    assert writer.newest[("trades", "polymarket")] == T0
    assert writer.totals[("snapshots", "polymarket", "written")] == 30


async def test_the_next_write_flushes_first_and_a_full_buffer_drops_the_oldest(
    cluster: NativePostgres, writer: Writer
) -> None:
    cluster.stop()
    for start in range(0, 80, 10):
        await writer.write_snapshots(_snaps(start, 10))
    assert len(writer.backlog) == 50
    assert writer.backlog.dropped["snapshots"] == 30
    cluster.start()
    # Wait for the pool to hand out connections again (it backs off during an outage) and
    # skip the writer's retry pause (real time) rather than sleep through it.
    for _ in range(40):
        try:
            async with writer.pool.connection(timeout=0.5) as conn:
                await conn.execute("SELECT 1")
            break
        except psycopg.OperationalError:
            await asyncio.sleep(0.25)
    writer.retry_now()
    result = await writer.write_snapshots(_snaps(80, 3))
    assert result.written == 3
    assert len(writer.backlog) == 0
    # The 30 oldest were dropped; the rest arrived, in order, before the new rows.
    assert _stored(cluster) == list(range(30, 83))
