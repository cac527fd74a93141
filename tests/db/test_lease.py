"""The lease several collectors compete for, on a real PostgreSQL: one leader at a time, a
free lease taken at the next try, and a split brain that cannot write twice (the fencing epoch:
a collector that lost the lease and does not know it yet writes nothing once another holds it,
and a takeover waits for the old leader's transaction in flight)."""

from __future__ import annotations

import asyncio

import pytest

from exporter.errors import NotLeader
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.lease import FencedDatabase, Lease
from tests.support.databases import Database

pytestmark = pytest.mark.db


def _lease_backend(pg: Database, holder: str) -> int:
    """The server process of ``holder``'s lease connection (the one holding the lock)."""
    with pg.connect() as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        ).fetchone()
    assert row is not None, holder
    return int(row[0])


async def test_one_leader_a_free_lease_is_taken_and_a_lost_one_cannot_write(
    pg: Database,
) -> None:
    settings = pg.settings()
    prepare_schema(settings)
    with pg.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE written (who text, epoch bigint)")
    a, b = Lease(settings.database, "a"), Lease(settings.database, "b")
    pool_a, pool_b = create_pool(settings.database), create_pool(settings.database)
    await pool_a.open(wait=True)
    await pool_b.open(wait=True)
    fenced_a, fenced_b = FencedDatabase(pool_a, a), FencedDatabase(pool_b, b)

    async def write(db: FencedDatabase, who: str) -> None:
        async with db.transaction() as conn:
            await conn.execute("INSERT INTO written VALUES (%s, %s)", (who, db.lease.epoch))

    try:
        assert await a.hold()
        assert not await b.hold()
        assert await a.hold()  # kept, not elected again
        assert (a.epoch, a.elections, b.epoch) == (1, 1, None)
        await write(fenced_a, "a")
        with pytest.raises(NotLeader):
            await write(fenced_b, "b")  # a follower never writes

        # Split brain: a's lease connection is cut (a does not know yet) while a transaction
        # of a's is in flight. b takes the lock at once, but its election waits for a's
        # transaction; a's write lands before it, and a's next write is refused.
        backend = _lease_backend(pg, "a")
        async with fenced_a.transaction() as conn:
            await conn.execute("INSERT INTO written VALUES ('a', 1)")
            with pg.connect(autocommit=True) as admin:
                # Terminating is a signal: wait for the backend (and its lock) to be gone.
                admin.execute("SELECT pg_terminate_backend(%s, 10000)", (backend,))
            taking = asyncio.create_task(b.hold())
            await asyncio.sleep(1.0)
            assert not taking.done()  # the election waits for the fence
        assert await asyncio.wait_for(taking, 10)
        assert b.epoch == 2
        assert a.leading  # a has not noticed yet ...
        with pytest.raises(NotLeader):
            await write(fenced_a, "a")  # ... but cannot write
        assert not a.leading
        await write(fenced_b, "b")
        assert not await a.hold()  # and at its next check it follows
        with pg.connect() as conn:
            rows = conn.execute("SELECT who, epoch FROM written ORDER BY ctid").fetchall()
            lease = conn.execute("SELECT holder, epoch FROM leases").fetchall()
        assert rows == [("a", 1), ("a", 1), ("b", 2)]
        assert lease == [("b", 2)]

        # The leader stops: the lease is free at once for the next try.
        await b.release()
        assert await a.hold()
        assert a.epoch == 3
    finally:
        await a.release()
        await b.release()
        await pool_a.close()
        await pool_b.close()
