"""TimescaleDB policies (refresh, compression, retention) kept in line with the configuration.

Applied at every start: a policy whose settings already match is left alone (its job id and
history survive), one that differs is replaced, one that the configuration disables is removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, LiteralString

import psycopg

from exporter.config import StorageConfig
from exporter.storage.migrate import MIGRATION_LOCK

RAW_TABLES = ("snapshots", "trades")
AGGREGATE_VIEWS = ("ohlc_1m", "ohlc_1h", "ohlc_1d")


@dataclass(frozen=True, slots=True)
class _Policy:
    proc: str
    add: LiteralString
    remove: LiteralString
    keys: tuple[str, ...]


_COMPRESSION = _Policy(
    "policy_compression",
    "SELECT add_compression_policy(%s::regclass, compress_after => %s::interval)",
    "SELECT remove_compression_policy(%s::regclass, if_exists => true)",
    ("compress_after",),
)
_RETENTION = _Policy(
    "policy_retention",
    "SELECT add_retention_policy(%s::regclass, drop_after => %s::interval)",
    "SELECT remove_retention_policy(%s::regclass, if_exists => true)",
    ("drop_after",),
)
_REFRESH = _Policy(
    "policy_refresh_continuous_aggregate",
    "SELECT add_continuous_aggregate_policy(%s::regclass, start_offset => %s::interval,"
    " end_offset => %s::interval, schedule_interval => %s::interval)",
    "SELECT remove_continuous_aggregate_policy(%s::regclass, if_exists => true)",
    ("start_offset", "end_offset", "schedule_interval"),
)


def apply_policies(conn: psycopg.Connection[Any], storage: StorageConfig) -> list[str]:
    """Create, replace or remove policies to match ``storage``; returns what changed."""
    changes: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        for table in RAW_TABLES:
            after = getattr(storage.compress_after, table)
            changes += _sync(conn, _COMPRESSION, table, None if after is None else (after,))
        for relation in (*RAW_TABLES, *AGGREGATE_VIEWS):
            kept = getattr(storage.retention, relation)
            changes += _sync(conn, _RETENTION, relation, None if kept is None else (kept,))
        for view in AGGREGATE_VIEWS:
            p = getattr(storage.refresh, view)
            changes += _sync(conn, _REFRESH, view, (p.start_offset, p.end_offset, p.every))
    return changes


def _sync(
    conn: psycopg.Connection[Any],
    policy: _Policy,
    relation: str,
    wanted: tuple[timedelta, ...] | None,
) -> list[str]:
    jobs = conn.execute(
        "SELECT config, schedule_interval FROM timescaledb_information.jobs"
        " WHERE proc_name = %s AND hypertable_name = %s",
        (policy.proc, relation),
    ).fetchall()
    if wanted is None:
        if not jobs:
            return []
        conn.execute(policy.remove, (relation,))
        return [f"removed {policy.proc} on {relation}"]
    if len(jobs) == 1 and _matches(conn, policy, jobs[0], wanted):
        return []
    if jobs:
        conn.execute(policy.remove, (relation,))
    conn.execute(policy.add, (relation, *wanted))
    return [f"set {policy.proc} on {relation}"]


def _matches(
    conn: psycopg.Connection[Any],
    policy: _Policy,
    job: tuple[Any, ...],
    wanted: tuple[timedelta, ...],
) -> bool:
    config, schedule = job
    current: list[object] = []
    for key in policy.keys:
        if key == "schedule_interval":
            current.append(schedule)
        else:
            current.append(config.get(key) if isinstance(config, dict) else None)
    if any(value is None for value in current):
        return False
    # Let the server compare: the job config holds intervals as text ('2 days', '02:00:00').
    row = conn.execute(
        "SELECT " + " AND ".join(["%s::interval = %s::interval"] * len(wanted)),
        [item for pair in zip(current, wanted, strict=True) for item in (str(pair[0]), pair[1])],
    ).fetchone()
    return bool(row and row[0])
