"""The database facade: driver and pool errors become the exporter's, in one place."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exporter.errors import SchemaError, StorageError, StorageRejected, StorageUnavailable
from exporter.storage.database import Database, translate


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (psycopg.OperationalError("server closed the connection"), StorageUnavailable),
        (PoolTimeout("couldn't get a connection after 5.00 sec"), StorageUnavailable),
        (errors.AdminShutdown("terminating connection"), StorageUnavailable),
        (psycopg.InterfaceError("the connection is closed"), StorageUnavailable),
        (errors.CheckViolation("new row violates check constraint"), StorageRejected),
        (errors.InvalidTextRepresentation("invalid input syntax"), StorageRejected),
        (errors.UndefinedTable('relation "movers" does not exist'), SchemaError),
        (errors.InsufficientPrivilege("permission denied for table markets"), SchemaError),
        (errors.SyntaxError("syntax error at or near"), StorageError),
    ],
)
def test_each_driver_error_has_one_of_ours(raised: psycopg.Error, expected: type) -> None:
    translated = translate(raised)
    assert type(translated) is expected
    if expected is not StorageUnavailable:
        assert str(raised) in str(translated)


async def test_what_fails_inside_or_while_acquiring_leaves_the_facade_translated() -> None:
    pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[object, ...]]] = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:9/none", open=False, timeout=0.2,
        kwargs={"connect_timeout": 1}, reconnect_timeout=0.5,
    )  # fmt: skip
    await pool.open(wait=False)
    try:
        with pytest.raises(StorageUnavailable) as caught:
            async with Database(pool).connection():
                pass
        assert isinstance(caught.value.__cause__, PoolTimeout)
    finally:
        await pool.close()
