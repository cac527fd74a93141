"""The database facade: connections lent from the pool (or from a connection of a caller's own),
and the one place where driver and pool errors become the exporter's.

psycopg.OperationalError, InterfaceError   -> StorageUnavailable (connection lost or refused,
    (PoolTimeout included)                    pool exhausted, server shutting down: retryable)
psycopg.DataError, IntegrityError          -> StorageRejected (a value the database refuses:
                                              retrying the same rows cannot help)
undefined table, column or function,       -> SchemaError (the schema is not what this
    missing privilege                         exporter expects)
any other psycopg.Error                    -> StorageError
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import errors
from psycopg_pool import AsyncConnectionPool

from exporter.errors import SchemaError, StorageError, StorageRejected, StorageUnavailable

_SCHEMA = (
    errors.UndefinedTable,
    errors.UndefinedColumn,
    errors.UndefinedFunction,
    errors.UndefinedObject,
    errors.InsufficientPrivilege,
)


def translate(exc: psycopg.Error) -> StorageError:
    """The exporter's error for a driver or pool error (keep ``exc`` as its ``__cause__``)."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        # The server's text may name host and user; the type is enough to act on.
        return StorageUnavailable(f"database unreachable: {type(exc).__name__}")
    lines = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    if isinstance(exc, psycopg.DataError | psycopg.IntegrityError):
        return StorageRejected(f"refused by the database: {detail}")
    if isinstance(exc, _SCHEMA):
        return SchemaError(f"the schema does not fit: {detail}")
    return StorageError(detail)


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Driver and pool errors raised inside the block leave it translated."""
    try:
        yield
    except psycopg.Error as exc:
        raise translate(exc) from exc


class Database:
    """The pool behind one facade: every statement runs on a connection it lends."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; what fails inside the block (acquiring it included) is raised as
        a :class:`~exporter.errors.StorageError`."""
        async with translated(), self.pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection inside one transaction, committed when the block ends."""
        async with self.connection() as conn, conn.transaction():
            yield conn


@asynccontextmanager
async def lent(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A caller's own connection, with the same translation."""
    async with translated():
        yield conn
