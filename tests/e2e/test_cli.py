"""The `movers` command end to end, as a user runs it (a real process, a real database)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.support.databases import Database
from tests.support.servers import free_port, running_postgres

pytestmark = pytest.mark.db


# Tests never reach a real venue: the venues are off here (the simulator tests turn them on).
NO_VENUES = "venues:\n  polymarket: {enabled: false}\n  kalshi: {enabled: false}\n"


def _movers(db: Database, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "movers.yaml"
    config.write_text(
        "database:\n"
        f"  prepared_statements: {'false' if db.shared_session else 'true'}\n"
        f"  write_concurrency: {1 if db.shared_session else 2}\n"
        "logging:\n  format: json\n"
        f"{NO_VENUES}"
    )
    env = {**os.environ, "MOVERS_DATABASE_URL": db.url, "MOVERS_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip


def test_migrate_twice_then_one_maintenance_pass(db: Database, tmp_path: Path) -> None:
    first = _movers(db, "migrate", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert '"applied": ["0001_core.sql"' in first.stderr
    second = _movers(db, "migrate", tmp_path=tmp_path)
    assert second.returncode == 0, second.stderr
    assert '"applied": "nothing to do"' in second.stderr
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO markets (market_id, venue, native_id, title, status, first_seen,"
            " last_seen) VALUES ('kalshi:KX-NEW', 'kalshi', 'KX-NEW', 'Listed between runs',"
            " 'open', now(), now())"
        )
    once = _movers(db, "run", "--once", tmp_path=tmp_path)
    assert once.returncode == 0, once.stderr
    assert "one pass done" in once.stderr
    # One pass posts no signals (the poster runs only in the service): the listing stays queued
    # for the next `movers run` rather than being taken and dropped.
    with psycopg.connect(db.url) as conn:
        queued = conn.execute(
            "SELECT kind FROM movers_internal.market_events WHERE market_id = 'kalshi:KX-NEW'"
        ).fetchall()
    assert queued == [("listed",)]


def test_unreachable_database_fails_cleanly_without_secrets(tmp_path: Path) -> None:
    db = Database("postgres", "postgresql://movers:pa55word@127.0.0.1:9/movers", False)
    result = _movers(db, "migrate", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "cannot connect to postgresql://movers:***@127.0.0.1:9/movers" in result.stderr
    assert "pa55word" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_run_migrates_then_stops_on_sigterm(pg: Database, tmp_path: Path) -> None:
    config = tmp_path / "movers.yaml"
    config.write_text("logging:\n  format: json\nstorage:\n  maintenance_every: 1s\n" + NO_VENUES)
    env = {**os.environ, "MOVERS_DATABASE_URL": pg.url, "MOVERS_CONFIG": str(config)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "run"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "exporter running" in line:
            break
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _rolled_up(pg):
        time.sleep(0.2)
    rolled_up = _rolled_up(pg)
    proc.send_signal(signal.SIGTERM)
    try:
        _, rest = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, "".join(seen)
    assert any('"mode": "plain"' in line for line in seen)
    assert "exporter stopped" in rest
    assert rolled_up, "the scheduled maintenance never advanced the ohlc_1m watermark"


def _rolled_up(db: Database) -> bool:
    with psycopg.connect(db.url) as conn:
        row = conn.execute(
            "SELECT isfinite(watermark) FROM movers_internal.rollup_state WHERE name = 'ohlc_1m'"
        ).fetchone()
    return bool(row and row[0])


def test_any_password_works_given_beside_the_url(tmp_path: Path) -> None:
    """MOVERS_DATABASE_PASSWORD (what compose passes): every character works, `@ / : + %` and a
    space included, against a server that checks passwords; a wrong one fails unechoed."""
    password = "p@ss/wo:rd+%41 x"
    with running_postgres(host_auth="scram-sha-256") as server:
        with psycopg.connect(host=str(server.data), port=server.port, user="postgres",
                             dbname="postgres", autocommit=True) as admin:  # fmt: skip
            admin.execute(
                sql.SQL("CREATE ROLE movers LOGIN SUPERUSER PASSWORD {}").format(password)
            )
            admin.execute("CREATE DATABASE movers OWNER movers")
        config = tmp_path / "movers.yaml"
        config.write_text("logging:\n  format: json\n" + NO_VENUES)
        url = f"postgresql://movers@127.0.0.1:{server.port}/movers"
        base = {**os.environ, "MOVERS_CONFIG": str(config), "MOVERS_DATABASE_URL": url}

        def migrate(given: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "exporter", "migrate"],
                env={**base, "MOVERS_DATABASE_PASSWORD": given},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip

        right = migrate(password)
        assert right.returncode == 0, right.stderr
        wrong = migrate(password + "!")
        assert wrong.returncode == 1
        assert "password authentication failed" in wrong.stderr
        assert password not in wrong.stderr + wrong.stdout
        shown = subprocess.run(
            [sys.executable, "-m", "exporter", "check-config"],
            env={**base, "MOVERS_DATABASE_PASSWORD": password},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert password not in shown.stdout + shown.stderr


def test_failing_maintenance_is_logged_once_and_counted_as_a_job(
    pg: Database, tmp_path: Path
) -> None:
    """Maintenance runs every second here and fails every time: one `job failing` line (the
    transition), not a line per run; its runs are counted like every job's."""
    config = tmp_path / "maintenance.yaml"
    config.write_text(
        "logging:\n  format: json\nstorage:\n  maintenance_every: 1s\n"
        f"metrics:\n  host: 127.0.0.1\n  port: {free_port()}\n" + NO_VENUES
    )
    env = {**os.environ, "MOVERS_DATABASE_URL": pg.url, "MOVERS_CONFIG": str(config)}
    migrated = _movers(pg, "migrate", tmp_path=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(pg.url, autocommit=True) as conn:  # every rollup pass is refused
        conn.execute(
            "CREATE FUNCTION movers_internal.refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON movers_internal.rollup_invalidations"
            " FOR EACH STATEMENT EXECUTE FUNCTION movers_internal.refuse()"
        )
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "run"], env=env, stderr=subprocess.PIPE, text=True
    )  # fmt: skip
    time.sleep(6)  # about five maintenance runs, every one failing
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    failing = [line for line in err.splitlines() if '"job failing"' in line]
    assert len(failing) == 1, err[-3000:]
    assert '"job": "maintenance"' in failing[0]
    assert "maintenance failed" not in err
