"""Connections: one place that opens them and translates connection failures."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from exporter.config import DatabaseConfig, Settings, redact_dsn
from exporter.errors import StorageUnavailable
from exporter.storage.arrays import ADAPTERS
from exporter.storage.migrate import MigrationReport, Mode, migrate
from exporter.storage.policies import apply_policies


def connection_kwargs(db: DatabaseConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, int(db.connect_timeout.total_seconds())),
        "context": ADAPTERS,
    }
    if not db.prepared_statements:
        kwargs["prepare_threshold"] = None
    if db.password is not None:
        # Beside the URL, never pasted into it: any character works (`@ / : + %` included).
        kwargs["password"] = db.password.get_secret_value()
    return kwargs


def _unreachable(db: DatabaseConfig, exc: BaseException) -> StorageUnavailable:
    # The server's message names host and user, never the password; keep only its first line.
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    dsn = redact_dsn(db.url.get_secret_value())
    return StorageUnavailable(f"cannot connect to {dsn}: {detail}")


def connect(db: DatabaseConfig) -> psycopg.Connection[tuple[Any, ...]]:
    """A synchronous connection (migrations, CLI); raises StorageUnavailable when unreachable."""
    try:
        return psycopg.connect(db.url.get_secret_value(), **connection_kwargs(db))
    except psycopg.OperationalError as exc:
        raise _unreachable(db, exc) from exc


async def connect_async(db: DatabaseConfig) -> psycopg.AsyncConnection[Any]:
    """An async connection of its own (the CLI's reads, the shutdown flush); raises
    StorageUnavailable when unreachable."""
    try:
        return await psycopg.AsyncConnection.connect(
            db.url.get_secret_value(), **connection_kwargs(db)
        )
    except psycopg.OperationalError as exc:
        raise _unreachable(db, exc) from exc


def create_pool(db: DatabaseConfig) -> AsyncConnectionPool[Any]:
    """An async pool for the writer and jobs; open it with ``await pool.open()``."""
    return AsyncConnectionPool(
        db.url.get_secret_value(),
        min_size=1,
        max_size=db.pool_size,
        kwargs=connection_kwargs(db),
        open=False,
        name="movers",
        # Wait for a connection no longer than for a new one: during an outage the writer holds
        # rows instead of stalling the job that produced them.
        timeout=db.connect_timeout.total_seconds(),
        check=AsyncConnectionPool.check_connection,
    )


def prepare_schema(settings: Settings, *, force_mode: Mode | None = None) -> MigrationReport:
    """Migrate, then (on full TimescaleDB) align the policies with the configuration."""
    with connect(settings.database) as conn:
        report = migrate(conn, settings.database.timescale, force_mode=force_mode)
        if report.mode is Mode.TIMESCALE:
            apply_policies(conn, settings.storage)
        password = settings.database.grafana_password
        if password is not None:
            enable_grafana_login(conn, password.get_secret_value())
    return report


GRAFANA_ROLE = "movers_grafana"
"""The read-only role of timescale/idempotent/95_grafana_role.sql."""


def enable_grafana_login(conn: psycopg.Connection[Any], password: str) -> None:
    """Let the read-only Grafana role log in with ``password`` (ALTER ROLE takes no parameters,
    so the password is quoted as a literal; it is never logged by the exporter)."""
    conn.execute(
        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(GRAFANA_ROLE), sql.Literal(password)
        )
    )
    conn.commit()
