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
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exporter.config import Settings, validate_settings

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
            "database": {"url": self.url, "prepared_statements": not self.shared_session},
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    url = os.environ.get("MOVERS_TEST_POSTGRES_URL")
    if url:
        yield Server("postgres", url, shared_session=False)
        return
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable(
            "no PostgreSQL server binaries: run scripts/test (installs Debian's postgresql-15) "
            "or set MOVERS_TEST_POSTGRES_URL"
        )
    assert bindir is not None
    as_root = os.geteuid() == 0
    # pytest's own temp root is 0700: the postgres user could not reach a folder inside it.
    data = Path(tempfile.mkdtemp(prefix="movers-pg-", dir="/tmp"))
    data.chmod(0o755)
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        [*run_as, str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U",
         "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    options = (
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [*run_as, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-o", options,
         "-l", str(data / "server.log"), "-w", "start"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        yield Server("postgres", f"postgresql://postgres@127.0.0.1:{port}/postgres", False)
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def timescale_server() -> Iterator[Server]:
    url = os.environ.get("MOVERS_TEST_TIMESCALE_URL")
    if url:
        yield Server("timescale", url, shared_session=False)
        return
    if not PGLITE_START.exists():
        _unavailable(
            f"no TimescaleDB: {PGLITE_START} is missing; set MOVERS_TEST_TIMESCALE_URL to a "
            "timescale/timescaledb server or put the shared/ folder beside the repository"
        )
    proc = subprocess.Popen(
        [str(PGLITE_START), "0", "memory://"], stdout=subprocess.PIPE, text=True
    )
    ready: list[str] = []
    reader = threading.Thread(
        target=lambda: ready.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.start()
    reader.join(timeout=120)
    line = ready[0] if ready else ""
    if not line.startswith("READY"):
        proc.kill()
        proc.wait()
        _unavailable(f"the TimescaleDB fixture did not start (said {line!r})")
    port = int(line.split()[1])
    try:
        yield Server("timescale", f"postgresql://postgres@127.0.0.1:{port}/postgres", True)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


_names = itertools.count()


def _reset_shared(url: str) -> None:
    """Drop every object the project creates (a shared WASM server has one database only)."""
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        caggs = conn.execute(
            "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            " ORDER BY view_name DESC"
        ).fetchall()
        for (name,) in caggs:
            conn.execute(f'DROP MATERIALIZED VIEW IF EXISTS "{name}" CASCADE')
        conn.execute("DROP VIEW IF EXISTS ohlc_1d, ohlc_1h, ohlc_1m CASCADE")
        # TimescaleDB drops a hypertable only on its own, not in a list.
        for table in ("snapshots", "trades", "outcomes", "markets", "copy_target"):
            conn.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
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
