"""Test databases: the servers the suite runs against and one clean database per test."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from exporter.config import Settings, validate_settings

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MOVERS_SHARED_DIR", REPO.parent / "shared"))
PGLITE_START = SHARED / "tools" / "pglite-timescaledb" / "start"
ALLOW_NO_DB = os.environ.get("MOVERS_TEST_ALLOW_NO_DB") == "1"


@dataclass(frozen=True)
class Server:
    kind: str  # "postgres" | "timescale"
    url: str
    shared_session: bool  # the WASM TimescaleDB: one session, one database, no prepared names


@dataclass(frozen=True)
class Database:
    """One clean database for one test."""

    kind: str
    url: str
    shared_session: bool

    def settings(self, **sections: Any) -> Settings:
        data: dict[str, Any] = {
            "database": {
                "url": self.url,
                "prepared_statements": not self.shared_session,
                # One shared session cannot hold two transactions at once.
                "write_concurrency": 1 if self.shared_session else 2,
            },
        }
        for key, value in sections.items():
            data[key] = {**data.get(key, {}), **value}
        return validate_settings(data)

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        if self.shared_session:
            kwargs.setdefault("prepare_threshold", None)
        return psycopg.connect(self.url, **kwargs)


_names = itertools.count()


def reset_shared(url: str) -> None:
    """Drop every object the project creates (a shared WASM server has one database only), as
    the catalogue lists them."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        caggs = conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            " ORDER BY view_name DESC"
        ).fetchall()
        for (name,) in caggs:
            conn.execute(f'DROP MATERIALIZED VIEW IF EXISTS "{name}" CASCADE')
        # Whatever else the migrations (or a test) made in public, read from the catalogue: views
        # first, then tables one by one (TimescaleDB drops a hypertable only on its own).
        views = conn.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public'").fetchall()
        for (name,) in views:
            conn.execute(f'DROP VIEW IF EXISTS "{name}" CASCADE')
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (name,) in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
        conn.execute("DROP SCHEMA IF EXISTS movers_internal CASCADE")
        conn.execute(
            "SELECT delete_job(job_id) FROM timescaledb_information.jobs WHERE job_id >= 1000"
        )


@contextlib.contextmanager
def fresh(server: Server) -> Iterator[Database]:
    if server.shared_session:
        reset_shared(server.url)
        yield Database(server.kind, server.url, True)
        return
    name = f"movers_test_{os.getpid()}_{next(_names)}"
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield Database(server.kind, server.url.rsplit("/", 1)[0] + f"/{name}", False)
    finally:
        with psycopg.connect(server.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
