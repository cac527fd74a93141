"""Migrations and TimescaleDB policies against real servers."""

from __future__ import annotations

import hashlib
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exporter.errors import SchemaError
from exporter.storage.db import prepare_schema
from exporter.storage.migrate import Capabilities, Mode, choose_mode, discover, migrate, sql_dir
from exporter.storage.tuning import _ROWS
from tests.support.databases import REPO, Database

pytestmark = pytest.mark.db

PUBLIC = {"markets", "outcomes", "snapshots", "trades", "ohlc_1m", "ohlc_1h", "ohlc_1d"}


def _catalogue(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything migrate() could change, to compare two runs."""
    relations = conn.execute(
        "SELECT n.nspname || '.' || c.relname, c.relkind FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname IN ('public', 'movers_internal') ORDER BY 1"
    ).fetchall()
    migrations = conn.execute(
        "SELECT version, file, applied_at FROM movers_internal.schema_migrations ORDER BY 1"
    ).fetchall()
    jobs: list[Any] = []
    if conn.execute("SELECT to_regclass('timescaledb_information.jobs')").fetchone() != (None,):
        jobs = conn.execute(
            "SELECT job_id, proc_name, hypertable_name, config::text"
            " FROM timescaledb_information.jobs WHERE job_id >= 1000 ORDER BY 1"
        ).fetchall()
    return {"relations": relations, "migrations": migrations, "jobs": jobs}


def _public_relations(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    ).fetchall()
    return {r[0] for r in rows} & PUBLIC


def _hypertables(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
    return {r[0] for r in rows.fetchall()}


def test_sql_files_are_well_named_and_cover_every_mode() -> None:
    files = discover(sql_dir() / "migrations")
    versions = sorted({f.version for f in files})
    assert versions == list(range(1, len(versions) + 1)), "versions must be contiguous"
    for version in versions:
        for mode in Mode:
            applying = [f for f in files if f.version == version and f.applies_to(mode)]
            assert len(applying) <= 1, f"{version} has two files for {mode}"


def test_migrate_creates_everything_and_is_a_no_op_the_second_time(db: Database) -> None:
    settings = db.settings()
    first = prepare_schema(settings)
    expected_mode = Mode.TIMESCALE if db.kind == "timescale" else Mode.PLAIN
    assert first.mode is expected_mode
    assert first.applied[0] == "0001_core.sql"
    with db.connect() as conn:
        assert _public_relations(conn) == PUBLIC
        before = _catalogue(conn)
    second = prepare_schema(settings)
    assert second.applied == []
    with db.connect() as conn:
        assert _catalogue(conn) == before


def test_concurrent_migrations_apply_each_version_once(db: Database) -> None:
    settings = db.settings()
    errors: list[BaseException] = []
    reports: list[Any] = []

    def run() -> None:
        try:
            reports.append(prepare_schema(settings))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert errors == []
    applied = [r.applied for r in reports]
    assert sum(1 for a in applied if a) == 1, applied
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT version, count(*) FROM movers_internal.schema_migrations GROUP BY 1"
        ).fetchall()
    assert rows
    assert all(n == 1 for _, n in rows)


def test_require_names_what_is_missing_on_plain_postgres(pg: Database) -> None:
    with pytest.raises(SchemaError, match="timescaledb extension is not installed"):
        prepare_schema(pg.settings(database={"timescale": "require"}))


def test_choose_mode_ladder() -> None:
    full = Capabilities(170000, "2.23.0", "2.23.0", "timescale")
    apache = Capabilities(150000, "2.13.0", "2.13.0", "apache")
    bare = Capabilities(150000, None, None, None)
    assert choose_mode(full, "auto") is Mode.TIMESCALE
    assert choose_mode(full, "off") is Mode.PLAIN
    assert choose_mode(apache, "auto") is Mode.HYPERTABLE
    assert choose_mode(bare, "auto") is Mode.PLAIN
    with pytest.raises(SchemaError, match="license is 'apache'"):
        choose_mode(apache, "require")
    with pytest.raises(SchemaError, match="too old"):
        choose_mode(Capabilities(130000, None, None, None), "auto")


def test_a_schema_never_changes_mode_silently(ts: Database) -> None:
    prepare_schema(ts.settings(database={"timescale": "off"}))
    with ts.connect() as conn:
        assert conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'snapshots'"
        ).fetchone() == (0,)
    with pytest.raises(SchemaError, match="set up in 'plain' mode"):
        prepare_schema(ts.settings())


def test_apache_only_rung_uses_hypertables_without_aggregates(ts: Database) -> None:
    report = prepare_schema(ts.settings(), force_mode=Mode.HYPERTABLE)
    assert report.mode is Mode.HYPERTABLE
    with ts.connect() as conn:
        hypertables = _hypertables(conn)
        caggs = conn.execute(
            "SELECT count(*) FROM timescaledb_information.continuous_aggregates"
        ).fetchone()
        assert _public_relations(conn) == PUBLIC
    assert {"snapshots", "trades"} <= hypertables
    assert caggs == (0,)


def test_the_replay_reads_stored_prices_from_the_key_alone(pg: Database) -> None:
    """`movers tune` reads a week of prices outcome by outcome: with price, bid and ask in the
    primary key's index (0013) those reads touch no table page."""
    prepare_schema(pg.settings())
    with pg.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO snapshots (time, outcome_id, price, bid, ask)"
            " SELECT now() - k * interval '1 minute', 'o' || k % 50, 0.5, 0.49, 0.51"
            " FROM generate_series(1, 5000) k"
        )
        conn.execute("VACUUM ANALYZE snapshots")
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_bitmapscan = off")
        plan = "\n".join(
            r[0] for r in conn.execute(
                "EXPLAIN " + _ROWS,
                {"outcomes": ["o1", "o2"], "los": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
                 "his": [datetime(2100, 1, 1, tzinfo=UTC)] * 2},
            ).fetchall()
        )  # fmt: skip
    # The rows of each read (the one before it may come from the time index on so few rows).
    assert "Index Only Scan using snapshots_pkey" in plan, plan
    assert "Index Scan using snapshots_pkey" not in plan, plan


def test_timescale_objects_and_policies(ts: Database) -> None:
    prepare_schema(ts.settings())
    with ts.connect() as conn:
        hypertables = _hypertables(conn)
        caggs = conn.execute(
            "SELECT view_name, materialized_only"
            " FROM timescaledb_information.continuous_aggregates ORDER BY 1"
        ).fetchall()
        jobs = conn.execute(
            "SELECT proc_name, hypertable_name FROM timescaledb_information.jobs"
            " WHERE job_id >= 1000"
        ).fetchall()
    assert {"snapshots", "trades"} <= hypertables
    assert caggs == [("ohlc_1d", False), ("ohlc_1h", False), ("ohlc_1m", False)]
    assert sorted(j for j in jobs if j[0] == "policy_refresh_continuous_aggregate") == [
        ("policy_refresh_continuous_aggregate", v) for v in ("ohlc_1d", "ohlc_1h", "ohlc_1m")
    ]
    assert sorted(h for p, h in jobs if p == "policy_compression") == ["snapshots", "trades"]
    assert sorted(h for p, h in jobs if p == "policy_retention") == [
        "ohlc_1h", "ohlc_1m", "snapshots", "trades",
    ]  # fmt: skip


def test_changed_configuration_replaces_only_the_changed_policy(ts: Database) -> None:
    prepare_schema(ts.settings())
    query = (
        "SELECT job_id, proc_name, hypertable_name, config->>'drop_after'"
        " FROM timescaledb_information.jobs WHERE job_id >= 1000 ORDER BY job_id"
    )
    with ts.connect() as conn:
        before = conn.execute(query).fetchall()
    prepare_schema(ts.settings(storage={"retention": {"trades": "30d", "ohlc_1h": None}}))
    with ts.connect() as conn:
        after = conn.execute(query).fetchall()
    gone = set(before) - set(after)
    added = set(after) - set(before)
    assert {(p, h) for _, p, h, _ in gone} == {
        ("policy_retention", "trades"),
        ("policy_retention", "ohlc_1h"),
    }
    assert [(p, h, d) for _, p, h, d in added] == [("policy_retention", "trades", "30 days")]


def _run_job(conn: psycopg.Connection[Any], proc: str, relation: str) -> None:
    row = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_name = %s",
        (proc, relation),
    ).fetchone()
    assert row is not None, f"no {proc} job on {relation}"
    conn.execute(f"CALL run_job({int(row[0])})")


def test_policies_compress_and_drop_chunks_while_aggregates_survive(ts: Database) -> None:
    prepare_schema(ts.settings())
    with ts.connect(autocommit=True) as conn:
        conn.execute(
            "INSERT INTO snapshots (time, outcome_id, price)"
            " SELECT now() - d * interval '1 day', 'kalshi:X', 0.5 + d / 100.0"
            " FROM generate_series(0, 20) AS d"
        )
        conn.execute(
            "CALL refresh_continuous_aggregate('ohlc_1m', NULL, now() - interval '1 minute')"
        )
        _run_job(conn, "policy_compression", "snapshots")
        _run_job(conn, "policy_retention", "snapshots")
        oldest = conn.execute("SELECT min(time) FROM snapshots").fetchone()
        compressed = conn.execute(
            "SELECT count(*) FILTER (WHERE is_compressed), count(*)"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'snapshots'"
        ).fetchone()
        aggregate = conn.execute(
            "SELECT count(*), min(bucket) < now() - interval '19 days' FROM ohlc_1m"
        ).fetchone()
        remaining = conn.execute("SELECT count(*) FROM snapshots").fetchone()
    assert oldest is not None
    assert remaining is not None
    assert compressed is not None
    retention = timedelta(days=14)
    assert remaining[0] < 21, "retention dropped no chunk"
    assert compressed[0] >= 1, "compression compressed no chunk"
    assert aggregate == (21, True), "aggregate rows outside raw retention must survive"
    with ts.connect() as conn:
        cutoff = conn.execute("SELECT now() - %s::interval", (retention + timedelta(days=1),))
        limit = cutoff.fetchone()
    assert limit is not None
    assert oldest[0] > limit[0]


def test_migrate_refuses_an_autocommit_connection(pg: Database) -> None:
    with pg.connect(autocommit=True) as conn, pytest.raises(SchemaError, match="autocommit"):
        migrate(conn, "auto")


def _columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT column_name, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'movers_internal' AND table_name = %s ORDER BY column_name",
        (table,),
    ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def _folder_with(tmp_path: Path, versions: int, replace: dict[str, str]) -> Path:
    """The shipped SQL folder up to migration ``versions``, files of ``replace`` swapped."""
    folder = tmp_path / "sql"
    shutil.copytree(sql_dir(), folder)
    for path in (folder / "migrations").glob("*.sql"):
        if int(path.name[:4]) > versions:
            path.unlink()
    for name, text in replace.items():
        (folder / "migrations" / name).write_text(text)
    return folder


def test_a_database_migrated_with_the_released_0007_upgrades_cleanly(
    db: Database, tmp_path: Path
) -> None:
    released = (REPO / "tests/fixtures/migrations/0007_movers_shares.released.sql").read_text()
    old = _folder_with(tmp_path, 7, {"0007_movers_shares.sql": released})
    with db.connect() as conn:
        migrate(conn, "auto", folder=old)
        conn.commit()
        assert ("computed_at", "NO") in _columns(conn, "share_movers")
    prepare_schema(db.settings())  # the shipped files: 0007 repaired, then 0008 and on
    with db.connect() as conn:
        upgraded = {t: _columns(conn, t) for t in ("share_movers", "share_categories")}
        recorded = conn.execute(
            "SELECT checksum FROM movers_internal.schema_migrations WHERE version = 7"
        ).fetchone()
    assert recorded is not None
    assert (
        recorded[0]
        == hashlib.sha256(
            (sql_dir() / "migrations" / "0007_movers_shares.sql").read_bytes()
        ).hexdigest()
    )
    # The shape a database migrated from scratch has (the WASM server holds one database).
    names = {t: {c for c, _ in cols} for t, cols in upgraded.items()}
    assert "computed_at" not in names["share_movers"] | names["share_categories"]
    assert {"market_id", "title", "outcome"} <= names["share_movers"]
    if not db.shared_session:
        _compare_with_fresh(db, upgraded)


def _compare_with_fresh(db: Database, upgraded: dict[str, Any]) -> None:
    name = db.url.rsplit("/", 1)[1] + "fresh"
    with psycopg.connect(db.url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        fresh = Database(db.kind, db.url.rsplit("/", 1)[0] + f"/{name}", False)
        prepare_schema(fresh.settings())
        with fresh.connect() as conn:
            assert upgraded == {t: _columns(conn, t) for t in upgraded}
    finally:
        with psycopg.connect(db.url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_applied_migration_that_changed_is_refused_naming_it(
    db: Database, tmp_path: Path
) -> None:
    prepare_schema(db.settings())
    text = (sql_dir() / "migrations" / "0005_alerts.sql").read_text()
    edited = _folder_with(tmp_path, 99, {"0005_alerts.sql": text + "\n-- an afterthought\n"})
    with db.connect() as conn, pytest.raises(SchemaError, match=r"migration 0005_alerts\.sql"):
        migrate(conn, "auto", folder=edited)
