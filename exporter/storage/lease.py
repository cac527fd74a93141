"""Leadership among several collectors sharing one database: a PostgreSQL session advisory lock
held on a connection of its own (released the moment that connection ends: a collector that
dies, or whose connection the server drops, lets another take over at its next try), and a
fencing epoch in the ``leases`` table that every write of a singleton job checks in its own
transaction (:class:`FencedDatabase`), so a collector that lost the lease and does not know it
yet cannot write once another holds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from exporter.config import DatabaseConfig
from exporter.errors import NotLeader, StorageError
from exporter.storage.database import Database, translated
from exporter.storage.db import connect_async

LOCK_KEY = 0x6D6F76657273  # "movers": the advisory lock the collectors compete for

_ELECT = """
INSERT INTO leases (name, holder, epoch, since) VALUES (%(name)s, %(holder)s, 1, now())
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1,
                                 since = excluded.since
RETURNING epoch
"""
_HELD = """
SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
  AND ((classid::bigint << 32) | objid::bigint) = %(key)s
"""
_FENCE = "SELECT 1 FROM leases WHERE name = %(name)s AND epoch = %(epoch)s FOR SHARE"


class Lease:
    """One collector's hold on the lease ``name``: :meth:`hold` takes it when it is free and
    says whether this collector leads now."""

    def __init__(self, db: DatabaseConfig, holder: str, name: str = "singleton") -> None:
        self.db = db
        self.holder = holder
        self.name = name
        self.epoch: int | None = None
        """The epoch this collector was elected with; None while it does not lead."""
        self.elections = 0
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def leading(self) -> bool:
        return self.epoch is not None

    async def hold(self) -> bool:
        """Keep the lease, or take it when no collector holds it; False (not leading) when the
        database cannot be reached: whoever reaches it leads."""
        try:
            if self._conn is None or self._conn.closed:
                self.epoch = None
                self._conn = await connect_async(self.db)
            async with translated():
                await self._conn.set_autocommit(True)
                if self.epoch is not None:
                    cur = await self._conn.execute(_HELD, {"key": LOCK_KEY})
                    row = await cur.fetchone()
                    if row is not None and row[0]:
                        return True
                    self.epoch = None  # the lock went (a restarted server)
                cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
                row = await cur.fetchone()
                if row is None or not row[0]:
                    return False
                cur = await self._conn.execute(_ELECT, {"name": self.name, "holder": self.holder})
                elected = await cur.fetchone()
                assert elected is not None
                self.epoch = int(elected[0])
                self.elections += 1
                return True
        except StorageError:
            self.epoch = None
            await self._drop()
            return False

    async def release(self) -> None:
        """Let another collector take over now (at shutdown)."""
        self.epoch = None
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with suppress(psycopg.Error):
                await conn.close()


class FencedDatabase(Database):
    """A facade whose every transaction first checks that ``lease`` still holds the epoch it
    was elected with (the row read FOR SHARE, so a new election waits for the transaction to
    end); :class:`~exporter.errors.NotLeader` otherwise, and nothing the block did is kept."""

    def __init__(self, pool: AsyncConnectionPool[Any], lease: Lease) -> None:
        super().__init__(pool)
        self.lease = lease

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        epoch = self.lease.epoch
        if epoch is None:
            raise NotLeader("this collector does not hold the lease")
        async with super().connection() as conn:
            async with translated():
                cur = await conn.execute(_FENCE, {"name": self.lease.name, "epoch": epoch})
                found = await cur.fetchone()
            if found is None:
                self.lease.epoch = None
                await conn.rollback()
                raise NotLeader("another collector took the lease")
            yield conn
