"""Real database servers for the storage tests: native PostgreSQL 15 and TimescaleDB.

- PostgreSQL: ``$MOVERS_TEST_POSTGRES_URL``, else a throwaway cluster made with initdb + pg_ctl on
  a free port (as the ``postgres`` system user when running as root: initdb refuses root).
- TimescaleDB: ``$MOVERS_TEST_TIMESCALE_URL`` (a timescale/timescaledb container), else
  ``../shared/tools/pglite-timescaledb/start`` (PostgreSQL 17 + TimescaleDB 2.23 in WASM).

A missing server fails the suite with a message saying how to get one, unless
``MOVERS_TEST_ALLOW_NO_DB=1`` is set (never in CI).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exporter.config import Settings, validate_settings
from tests.image import Image
from tests.image import build as build_image
from tests.image import remove as remove_image
from tests.servers import ServerUnavailable, native_postgres, wasm_timescale

REPO = Path(__file__).resolve().parents[1]
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


def _unavailable(message: str) -> None:
    if ALLOW_NO_DB:
        pytest.skip(message)
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    url = os.environ.get("MOVERS_TEST_POSTGRES_URL")
    if url:
        yield Server("postgres", url, shared_session=False)
        return
    try:
        with native_postgres(
            ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
        ) as started:
            yield Server("postgres", started, shared_session=False)
    except ServerUnavailable as exc:
        _unavailable(str(exc))


@pytest.fixture(scope="session")
def timescale_server() -> Iterator[Server]:
    url = os.environ.get("MOVERS_TEST_TIMESCALE_URL")
    if url:
        yield Server("timescale", url, shared_session=False)
        return
    try:
        with wasm_timescale(PGLITE_START) as started:
            yield Server("timescale", started, shared_session=True)
    except ServerUnavailable as exc:
        _unavailable(str(exc))


_names = itertools.count()


def _reset_shared(url: str) -> None:
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
def _fresh(server: Server) -> Iterator[Database]:
    if server.shared_session:
        _reset_shared(server.url)
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


@pytest.fixture(params=["postgres", "timescale"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A clean database on each server kind: every storage test runs on both."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    with _fresh(server) as database:
        yield database


@pytest.fixture
def pg(postgres_server: Server) -> Iterator[Database]:
    with _fresh(postgres_server) as database:
        yield database


@pytest.fixture
def ts(timescale_server: Server) -> Iterator[Database]:
    with _fresh(timescale_server) as database:
        yield database


@pytest.fixture(scope="session")
def image() -> Iterator[Image]:
    """The exporter image, replayed from the Dockerfile once per session (tests/image.py)."""
    built = build_image()
    try:
        yield built
    finally:
        remove_image(built)


SERVER_FIXTURES = frozenset(
    {"db", "pg", "ts", "postgres_server", "timescale_server", "image", "filled", "served",
     "store", "cluster"}
)  # fmt: skip
"""Fixtures that start a real server (or build the image): a test using one is a `db` test."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `db` marker follows the fixtures, so `-m "not db"` starts no server whatever a test
    module says (tests that start a cluster themselves carry the marker by hand)."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
