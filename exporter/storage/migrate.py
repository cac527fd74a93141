"""Schema migrations: numbered SQL files applied once, an idempotent folder re-applied every start.

File names are ``NNNN_name.sql`` (every mode) or ``NNNN_name.<mode>[+<mode>].sql`` where a mode is
one rung of the capability ladder:

- ``timescale``: TimescaleDB with its Timescale-licensed features (continuous aggregates,
  compression, policies) -> native objects and policies;
- ``hypertable``: TimescaleDB Apache-only -> hypertables, the exporter runs rollups and retention;
- ``plain``: PostgreSQL >= 14 without the extension -> plain tables, the exporter runs the rest.

All of it runs in one transaction under an advisory lock, so concurrent starts are safe, and the
applied versions are recorded in ``movers_internal.schema_migrations``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Literal

import psycopg

from exporter.errors import SchemaError

MIGRATION_LOCK = 0x6D6F7665  # "move": one advisory lock key for the whole schema
MIN_SERVER_VERSION = 140000  # date_bin() and by-range partitioning helpers need PostgreSQL 14


class Mode(StrEnum):
    TIMESCALE = "timescale"
    HYPERTABLE = "hypertable"
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the server offers, as read from its catalogue."""

    server_version: int
    extension_available: str | None
    extension_installed: str | None
    license: str | None

    @property
    def full_timescale(self) -> bool:
        return self.extension_installed is not None and self.license == "timescale"


@dataclass(frozen=True, slots=True)
class SqlFile:
    version: int
    name: str
    modes: frozenset[Mode] | None  # None: every mode
    path: Path

    def applies_to(self, mode: Mode) -> bool:
        return self.modes is None or mode in self.modes

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@dataclass(slots=True)
class MigrationReport:
    mode: Mode
    capabilities: Capabilities
    applied: list[str] = field(default_factory=list)


_FILE = re.compile(r"^(?P<version>\d+)_(?P<name>[a-z0-9_]+)(?:\.(?P<modes>[a-z+]+))?\.sql$")


def sql_dir() -> Path:
    """The SQL folder: ``$MOVERS_SQL_DIR`` when set, else the package's own ``exporter/sql``
    (package data: it ships in the wheel)."""
    configured = os.environ.get("MOVERS_SQL_DIR")
    path = Path(configured) if configured else Path(__file__).resolve().parents[1] / "sql"
    if not (path / "migrations").is_dir():
        raise SchemaError(f"SQL folder not found at {path}; set MOVERS_SQL_DIR")
    return path


def discover(folder: Path) -> list[SqlFile]:
    """The SQL files of one folder in order; a malformed name is an error, not silently skipped."""
    files: list[SqlFile] = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise SchemaError(f"{path.name}: expected NNNN_name[.mode[+mode]].sql")
        modes = match["modes"]
        try:
            parsed = frozenset(Mode(m) for m in modes.split("+")) if modes else None
        except ValueError as exc:
            raise SchemaError(f"{path.name}: unknown mode in file name ({exc})") from None
        files.append(SqlFile(int(match["version"]), match["name"], parsed, path))
    return files


def detect_capabilities(conn: psycopg.Connection[tuple[object, ...]]) -> Capabilities:
    row = conn.execute(
        """
        SELECT current_setting('server_version_num')::int,
               (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'),
               (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
               current_setting('timescaledb.license', true)
        """
    ).fetchone()
    assert row is not None
    version, available, installed, license_ = row
    return Capabilities(
        server_version=int(str(version)),
        extension_available=str(available) if available else None,
        extension_installed=str(installed) if installed else None,
        license=str(license_) if license_ else None,
    )


def choose_mode(caps: Capabilities, setting: Literal["auto", "require", "off"]) -> Mode:
    """The ladder rung for these capabilities; ``require`` fails naming what is missing."""
    if caps.server_version < MIN_SERVER_VERSION:
        raise SchemaError(
            f"PostgreSQL {caps.server_version // 10000} is too old: version 14 or newer is needed"
        )
    if setting == "off":
        return Mode.PLAIN
    if caps.full_timescale:
        return Mode.TIMESCALE
    if setting == "require":
        if caps.extension_installed is None:
            missing = (
                "the timescaledb extension is not installed on this server"
                if caps.extension_available is None
                else "the timescaledb extension could not be created (needs a superuser or "
                "trusted extension)"
            )
        else:
            missing = (
                f"timescaledb.license is {caps.license!r}: continuous aggregates, compression "
                "and policies need the Timescale license ('timescale')"
            )
        raise SchemaError(f"database.timescale is 'require' but {missing}")
    return Mode.HYPERTABLE if caps.extension_installed else Mode.PLAIN


_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS movers_internal;
CREATE TABLE IF NOT EXISTS movers_internal.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    file       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS movers_internal.schema_settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
"""


def migrate(
    conn: psycopg.Connection[tuple[object, ...]],
    setting: Literal["auto", "require", "off"],
    *,
    force_mode: Mode | None = None,
    folder: Path | None = None,
) -> MigrationReport:
    """Bring the schema up to date in one transaction; safe to run twice and concurrently.

    ``force_mode`` pins the rung (tests use it to exercise the Apache-only path on a full
    TimescaleDB); otherwise it follows ``setting`` and the server's capabilities. The mode chosen
    the first time is recorded, and a later start that would choose another one is refused.
    """
    root = folder or sql_dir()
    migrations = discover(root / "migrations")
    idempotent = discover(root / "idempotent")
    if conn.autocommit:
        raise SchemaError("migrate() needs a connection that is not in autocommit mode")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        caps = detect_capabilities(conn)
        if setting != "off" and caps.extension_installed is None and caps.extension_available:
            caps = _try_create_extension(conn, caps)
        mode = force_mode or choose_mode(caps, setting)
        report = MigrationReport(mode=mode, capabilities=caps)
        conn.execute(_BOOTSTRAP)
        _check_recorded_mode(conn, mode)
        recorded = {
            int(str(v)): (str(f), str(c))
            for v, f, c in conn.execute(
                "SELECT version, file, checksum FROM movers_internal.schema_migrations"
            )
        }
        _verify_applied(conn, recorded, migrations, root / "repairs")
        done = set(recorded)
        for version, variants in _by_version(migrations).items():
            if version in done:
                continue
            chosen = [f for f in variants if f.applies_to(mode)]
            if len(chosen) > 1:
                raise SchemaError(f"migration {version} has several files for mode {mode}")
            text = chosen[0].text() if chosen else ""
            if chosen:
                conn.execute(text.encode())
                report.applied.append(chosen[0].path.name)
            conn.execute(
                "INSERT INTO movers_internal.schema_migrations (version, name, file, checksum)"
                " VALUES (%s, %s, %s, %s)",
                (
                    version,
                    variants[0].name,
                    chosen[0].path.name if chosen else f"(none for {mode})",
                    _checksum(text),
                ),
            )
            done.add(version)
        unknown = sorted(done - {f.version for f in migrations})
        if unknown:
            raise SchemaError(
                f"the database has migrations {unknown} that this exporter does not know: "
                "the schema is newer than this exporter; upgrade the exporter"
            )
        for file in idempotent:
            if file.applies_to(mode):
                conn.execute(file.text().encode())
    return report


# Released migrations edited afterwards, before the runner checked: (version, checksum of the
# released text) -> the repair that brings such a database to what the current file creates.
# Nothing may be added here: change a released migration with a new one.
_REPAIRS: dict[tuple[int, str], str] = {
    (7, "e75c0dd2962c14715d19841802563ac0964c6ff4fe66e8ee9266b76ae0ce9789"): "0007_e75c0dd2.sql",
}


def _verify_applied(
    conn: psycopg.Connection[tuple[object, ...]],
    recorded: dict[int, tuple[str, str]],
    migrations: list[SqlFile],
    repairs: Path,
) -> None:
    """Each applied migration's file is unchanged since it was applied (its stored checksum);
    a changed one is refused, naming it, unless it is a known released-then-edited file, whose
    repair runs once and records the current checksum."""
    files = {f.path.name: f for f in migrations}
    for version, (name, checksum) in sorted(recorded.items()):
        if name.startswith("(none for"):
            expected = _checksum("")
        elif name in files:
            expected = _checksum(files[name].text())
        else:
            if version not in {f.version for f in migrations}:
                continue  # a newer exporter's migration: refused below, naming the versions
            raise SchemaError(
                f"migration {name} was applied to this database but is no longer shipped: "
                "released migrations are never renamed or removed"
            )
        if checksum == expected:
            continue
        repair = _REPAIRS.get((version, checksum))
        if repair is None:
            raise SchemaError(
                f"migration {name} changed after it was applied to this database (checksum "
                f"{checksum[:12]}… recorded, {expected[:12]}… shipped): released migrations are "
                "never edited; restore the file and add a new migration for the change"
            )
        conn.execute((repairs / repair).read_text(encoding="utf-8").encode())
        conn.execute(
            "UPDATE movers_internal.schema_migrations SET checksum = %s WHERE version = %s",
            (expected, version),
        )


def _try_create_extension(
    conn: psycopg.Connection[tuple[object, ...]], caps: Capabilities
) -> Capabilities:
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error:
        return caps  # not allowed here: stay on the lower rung (or fail under `require`)
    return detect_capabilities(conn)


def _check_recorded_mode(conn: psycopg.Connection[tuple[object, ...]], mode: Mode) -> None:
    row = conn.execute(
        "SELECT value FROM movers_internal.schema_settings WHERE key = 'mode'"
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO movers_internal.schema_settings (key, value) VALUES ('mode', %s)",
            (mode.value,),
        )
        return
    recorded = str(row[0])
    if recorded != mode.value:
        raise SchemaError(
            f"this database was set up in {recorded!r} mode but the server and "
            f"database.timescale now select {mode.value!r}; moving a schema between modes is not "
            "supported: keep the previous setting or start from an empty database"
        )


def _by_version(files: Iterable[SqlFile]) -> dict[int, list[SqlFile]]:
    grouped: dict[int, list[SqlFile]] = {}
    for file in files:
        grouped.setdefault(file.version, []).append(file)
    return dict(sorted(grouped.items()))


def recorded_mode(conn: psycopg.Connection[tuple[object, ...]]) -> Mode | None:
    """The mode the schema was created in, or None before the first migration."""
    exists = conn.execute("SELECT to_regclass('movers_internal.schema_settings')").fetchone()
    if exists is None or exists[0] is None:
        return None
    row = conn.execute(
        "SELECT value FROM movers_internal.schema_settings WHERE key = 'mode'"
    ).fetchone()
    return Mode(str(row[0])) if row else None


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
