"""Fixtures for every tier, and the markers: each test is marked with its tier's folder (unit,
adapter, db, ops, e2e), and a test using a real server (or the replayed image) is also `db`.

Real database servers for the storage tests: native PostgreSQL 15 and TimescaleDB.

- PostgreSQL: ``$MOVERS_TEST_POSTGRES_URL``, else a throwaway cluster made with initdb + pg_ctl on
  a free port (as the ``postgres`` system user when running as root: initdb refuses root).
- TimescaleDB: ``$MOVERS_TEST_TIMESCALE_URL`` (a timescale/timescaledb container), else
  ``../shared/tools/pglite-timescaledb/start`` (PostgreSQL 17 + TimescaleDB 2.23 in WASM).

A missing server fails the suite with a message saying how to get one, unless
``MOVERS_TEST_ALLOW_NO_DB=1`` is set (never in CI).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import ALLOW_NO_DB, PGLITE_START, Database, Server, fresh
from tests.support.image import Image
from tests.support.image import build as build_image
from tests.support.image import remove as remove_image
from tests.support.servers import ServerUnavailable, native_postgres, wasm_timescale

TIERS = ("unit", "adapter", "db", "ops", "e2e")
LONGEST = "test_stack.py"
"""The stack tests: about eight minutes of waiting on the shipped timings."""
HERE = Path(__file__).resolve().parent


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


@pytest.fixture(params=["postgres", "timescale"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A clean database on each server kind: every storage test runs on both."""
    server: Server = request.getfixturevalue(f"{request.param}_server")
    with fresh(server) as database:
        yield database


@pytest.fixture
def pg(postgres_server: Server) -> Iterator[Database]:
    with fresh(postgres_server) as database:
        yield database


@pytest.fixture
def ts(timescale_server: Server) -> Iterator[Database]:
    with fresh(timescale_server) as database:
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
    """Each test gets its tier's marker from its folder; the `db` marker also follows the
    fixtures, so `-m "not db"` starts no server whatever folder a test is in (tests that start a
    cluster themselves carry the marker by hand)."""
    for item in items:
        tier = Path(item.path).resolve().relative_to(HERE).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)
    # The longest file first: on two workers (scripts/test) the other takes the rest meanwhile.
    items.sort(key=lambda item: item.path.name != LONGEST)
