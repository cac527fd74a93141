"""The database connection: URL, pool, writes, secrets from the environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from exporter.config.types import PositiveDuration, _keyed, _Section


class DatabaseConfig(_Section):
    url: SecretStr = SecretStr("postgresql://movers@localhost:5432/movers")
    """libpq URL or keyword string; override with ``MOVERS_DATABASE_URL``."""
    timescale: Literal["auto", "require", "off"] = "auto"
    """auto: use what the server offers; require: fail unless every TimescaleDB feature is
    there; off: plain PostgreSQL tables even where TimescaleDB exists."""
    pool_size: int = Field(default=4, ge=1, le=64)
    prepared_statements: bool = True
    """Set false behind PgBouncer in transaction mode (or any server whose sessions are shared)."""
    connect_timeout: PositiveDuration = timedelta(seconds=10)
    write_batch_rows: int = Field(default=5000, ge=100, le=100_000)
    """Rows per insert statement; a bigger write is split into statements of this size."""
    write_concurrency: int = Field(default=2, ge=1, le=64)
    """Statements of one big write in flight at once, each on its own pooled connection; the
    movers refresh also splits its outcomes into this many shares, ranked at once, and with 2 or
    more ``movers tune`` reads its hourly extremes in two halves at once. 1 on a server whose
    sessions are shared."""
    password: SecretStr | None = None
    """The database password, passed to the server beside ``url`` (so it needs no URL escaping);
    only from ``MOVERS_DATABASE_PASSWORD``. A password in ``url`` is used when this is unset."""
    grafana_password: SecretStr | None = None
    """Password the read-only role ``movers_grafana`` gets at start (login enabled); only from
    ``MOVERS_GRAFANA_DB_PASSWORD``. Unset: the role exists but cannot log in."""
    outage_buffer_rows: int = Field(default=500_000, ge=0, le=50_000_000)
    """Rows held in memory while the database is unreachable (about 10 minutes of change-only
    snapshots and trades for the default cadences at ~50k changing outcomes a minute; ~250 bytes
    each); past it the oldest are dropped and counted."""

    @model_validator(mode="after")
    def _concurrency_fits_pool(self) -> DatabaseConfig:
        if self.write_concurrency > self.pool_size:
            raise _keyed(
                [
                    (
                        "write_concurrency",
                        f"{self.write_concurrency} exceeds pool_size ({self.pool_size}): each "
                        "statement in flight needs its own connection",
                    )
                ]
            )
        return self
