"""Movers refresh, Top-Movers read and /metrics render on native PostgreSQL, against the naive
computation (both prices looked up in the raw snapshots at query time).

Run by hand (not a test): ``.venv/bin/python -m bench.movers_refresh [--outcomes N] [--days D]
[--heartbeat MIN] [--concurrency N]``. Starts a throwaway PostgreSQL cluster, creates
``--outcomes`` outcomes (4/5 Polymarket, two per market; 1/5 Kalshi) and ``--days`` of
change-only history: a row per outcome every ``--heartbeat`` minutes (each a new price: every
outcome moves) plus a change a minute for the 500 hottest, stored in time order as the writer
stores them. Then it times the first (full) refresh, steady refreshes one minute apart with a
minute of new rows before each (on ``--concurrency`` connections, then on one), the naive
computation, the read the Top Movers panel makes, and rendering /metrics; and the refresh after
history is noted (a hot-set newcomers' week, a first start's backfill of every outcome by key
and in one scan, a note without outcomes). Results:
bench/results/movers_refresh.json. Targets: refresh <= 2 s, read <= 50 ms, /metrics <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from prometheus_client import generate_latest

from bench.common import write_result
from exporter import movers
from exporter.categories import load_categories
from exporter.config import validate_settings
from exporter.metrics import build_registry
from exporter.movers import MoversJob, MoversRefresher
from exporter.service import build_ingest
from exporter.storage.database import Database
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.health import DatabaseFigures
from exporter.storage.movers import naive_movers, read_movers
from exporter.storage.writer import Writer
from tests.support.servers import running_postgres

SERVER = ("fsync=off", "synchronous_commit=off", "shared_buffers=2GB", "work_mem=64MB",
          "maintenance_work_mem=1GB", "max_wal_size=8GB")  # fmt: skip
HOT = 500


RANDOM_PRICE = "round((0.02 + random() * 0.96)::numeric, 3)::float8 + 0 * extract(epoch FROM t)"
"""Every row a new price drawn at random: every outcome moves, the refresh's worst case."""


def populate(
    url: str, outcomes: int, days: int, heartbeat: int, now: datetime, real_ids: bool = True,
    price: str = RANDOM_PRICE,
) -> int:  # fmt: skip
    """Markets, outcomes and history; returns the snapshot rows made. ``real_ids``: ids of the
    venues' own shapes (a Polymarket outcome is ``polymarket:`` and a 77-digit token id, its
    market a 66-character condition id; a Kalshi one its ticker), else short ones. ``price``:
    each row's price, an SQL expression of the outcome ``o`` and the time ``t``."""
    categories = load_categories().taxonomy
    poly_markets = outcomes * 2 // 5
    kalshi_markets = outcomes - 2 * poly_markets
    start = now - timedelta(days=days)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO markets (market_id, venue, native_id, title, category, status, url,
                                 volume_24h, first_seen, last_seen)
            SELECT v || ':' || native, v, native, 'Market number ' || i,
                   (%(cats)s::text[])[1 + i %% %(n)s], 'open', 'https://example.test/' || i,
                   (random() * 100000)::int, %(start)s, %(now)s
            FROM (SELECT 'polymarket' AS v, i, CASE WHEN %(real)s
                             THEN '0x' || md5('c' || i) || md5('d' || i) ELSE 'm' || i END AS native
                  FROM generate_series(1, %(poly)s) i
                  UNION ALL
                  SELECT 'kalshi', i, CASE WHEN %(real)s
                             THEN 'KXMARKET' || i %% 500 || '-26DEC01-T' || i ELSE 'm' || i END
                  FROM generate_series(1, %(kalshi)s) i) s
            """,
            {"cats": categories, "n": len(categories), "poly": poly_markets,
             "kalshi": kalshi_markets, "start": start, "now": now, "real": real_ids},
        )  # fmt: skip
        conn.execute(
            """
            INSERT INTO outcomes (outcome_id, market_id, venue, native_id, name, position,
                                  first_seen, last_seen)
            SELECT venue || ':' || native, market_id, venue, native,
                   CASE p WHEN 0 THEN 'Yes' ELSE 'No' END, p, first_seen, last_seen
            FROM markets, generate_series(0, CASE venue WHEN 'kalshi' THEN 0 ELSE 1 END) p,
                 LATERAL (SELECT CASE
                     WHEN NOT %(real)s THEN native_id || '-' || p
                     WHEN venue = 'kalshi' THEN native_id
                     -- A Polymarket token id: 77 decimal digits.
                     ELSE substr(translate(md5(market_id || p) || md5(p || market_id)
                                           || md5(market_id), 'abcdef', '123456'), 1, 77)
                 END AS native) n
            """,
            {"real": real_ids},
        )
        # Bulk load without the indexes, then build them once.
        key = conn.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                           " WHERE conname = 'snapshots_pkey'").fetchone()  # fmt: skip
        assert key is not None
        conn.execute("ALTER TABLE snapshots DROP CONSTRAINT snapshots_pkey")
        conn.execute("DROP INDEX snapshots_time_idx")
        for day in range(days):
            lo = start + timedelta(days=day)
            conn.execute(
                """
                INSERT INTO snapshots (time, outcome_id, price, bid, ask)
                SELECT t + (abs(hashtext(o.outcome_id)) %% %(beat)s) * interval '1 second',
                       o.outcome_id, p, greatest(p - 0.005, 0), least(p + 0.005, 1)
                FROM outcomes o,
                     generate_series(%(lo)s::timestamptz, %(hi)s - interval '1 second',
                                     %(beat)s * interval '1 second') t,
                     LATERAL (SELECT {price} AS p) r
                ORDER BY t
                """.replace("{price}", price),
                {"lo": lo, "hi": lo + timedelta(days=1), "beat": heartbeat * 60},
            )
            conn.execute(
                """
                INSERT INTO snapshots (time, outcome_id, price, bid, ask)
                SELECT t + interval '30.5 seconds', o.outcome_id, p, p - 0.005, p + 0.005
                FROM (SELECT outcome_id FROM outcomes ORDER BY outcome_id LIMIT %(hot)s) o,
                     generate_series(%(lo)s::timestamptz, %(hi)s - interval '1 minute',
                                     interval '1 minute') t,
                     LATERAL (SELECT {price} AS p) r
                ORDER BY t
                """.replace("{price}", price),
                {"lo": lo, "hi": lo + timedelta(days=1), "hot": HOT},
            )
            print(f"  day {day + 1}/{days} loaded", flush=True)
        conn.execute(f"ALTER TABLE snapshots ADD CONSTRAINT snapshots_pkey {key[0]}")
        conn.execute("CREATE INDEX snapshots_time_idx ON snapshots (time DESC)")
        conn.execute("VACUUM ANALYZE")
        row = conn.execute("SELECT count(*) FROM snapshots").fetchone()
        # The load's dirty pages written out before anything is timed: a deployment does not
        # load a week of history in the minutes before it refreshes.
        conn.execute("CHECKPOINT")
    os.sync()
    return int(row[0]) if row else 0


NEWCOMERS = 600
"""Outcomes whose week of history a backfill wrote between two refreshes (as many as joined
Kalshi's hot set at once in the full-universe backfill benchmark)."""
FIRST_START = timedelta(minutes=20)
"""How long before a first start's universe backfill ends its outcomes' first live rows came
(the full-universe backfill benchmark backfilled for about 24 minutes)."""


def one_minute(url: str, at: datetime, heartbeat: int) -> int:
    """The rows a minute brings: the heartbeats due in it, and a change for each hot outcome."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(
            """
            INSERT INTO snapshots (time, outcome_id, price, bid, ask)
            SELECT time, outcome_id, p, p - 0.005, p + 0.005
            FROM (SELECT %(at)s - interval '1 minute' + random() * interval '59 seconds' AS time,
                         outcome_id, round((0.02 + random() * 0.96)::numeric, 3)::float8 AS p
                  FROM outcomes
            WHERE abs(hashtext(outcome_id || %(tag)s)) %% %(beat)s = 0
               OR outcome_id IN (SELECT outcome_id FROM outcomes ORDER BY outcome_id LIMIT %(hot)s)
            ) s
            ON CONFLICT DO NOTHING
            """,
            {"at": at, "tag": at.isoformat(), "beat": heartbeat, "hot": HOT},
        )
        return max(cur.rowcount, 0)


def timed_ms(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
    }


async def steady_refreshes(
    job: MoversJob, url: str, args: argparse.Namespace, moment: datetime, count: int
) -> tuple[list[float], list[int], datetime]:
    """``count`` refreshes a minute apart, each after a minute of new rows: their times, the rows
    and the last refresh's time."""
    steady: list[float] = []
    new_rows: list[int] = []
    for _ in range(count):
        moment += timedelta(minutes=1)
        new_rows.append(one_minute(url, moment, args.heartbeat))
        started = time.perf_counter()
        result = await job.run(moment)
        steady.append(time.perf_counter() - started)
        assert not result["full"]
        print(f"  refresh {time.perf_counter() - started:.3f} s: {result}", flush=True)
    return steady, new_rows, moment


async def run(url: str, args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    settings = validate_settings({"database": {"url": url, "write_concurrency": args.concurrency}})
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        writer = Writer.from_settings(pool, prepare_schema(settings).mode, settings)
        ingest = build_ingest(settings, writer)
        if ingest.leadership is not None:
            await ingest.leadership.keep()  # the refresh is the leader's (its writes are fenced)
        job = ingest.movers
        started = time.perf_counter()
        first = await job.run(now)
        full_seconds = time.perf_counter() - started
        steady, new_rows, moment = await steady_refreshes(job, url, args, now, args.refreshes)
        # After a backfill: history of NEWCOMERS outcomes (hot-set newcomers) noted with them;
        # a first start's, of every outcome up to its first live rows (FIRST_START before), read
        # by key and in one scan of every slice (past DEEP_OUTCOMES); a note without outcomes
        # (as before migration 0014: every outcome read again).
        after_history: dict[str, float] = {}
        cases = (("noted_outcomes", NEWCOMERS, True, None),
                 ("first_start_by_key", args.outcomes, True, 10**9),
                 ("first_start_one_scan", args.outcomes, True, 0),
                 ("any_outcome", NEWCOMERS, False, None))  # fmt: skip
        for name, count, ids, deep_outcomes in cases:
            moment += timedelta(minutes=1)
            one_minute(url, moment, args.heartbeat)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO movers_internal.history_written (oldest, newest, outcome_ids)"
                    " SELECT %s, %s, CASE WHEN %s THEN array_agg(outcome_id) END FROM"
                    " (SELECT outcome_id FROM outcomes ORDER BY md5(outcome_id) LIMIT %s) o",
                    (now - timedelta(days=args.days),
                     moment - (FIRST_START if count == args.outcomes else timedelta()), ids,
                     count),
                )  # fmt: skip
            cutoff = movers.DEEP_OUTCOMES
            if deep_outcomes is not None:
                movers.DEEP_OUTCOMES = deep_outcomes
            try:
                started = time.perf_counter()
                assert not (await job.run(moment))["full"]
            finally:
                movers.DEEP_OUTCOMES = cutoff
            after_history[name] = round(time.perf_counter() - started, 3)
            print(f"  refresh after history ({name}): {after_history[name]} s", flush=True)
        # The same on one connection (a server whose sessions are shared, or no core to spare).
        alone = MoversJob(MoversRefresher(Database(pool), settings.movers, None, 1))
        await alone.run(moment)
        one_connection, _, moment = await steady_refreshes(alone, url, args, moment, 5)
        reads: list[float] = []
        per_window: dict[str, int] = {}
        async with pool.connection() as conn:
            for i in range(args.reads):
                window = list(settings.movers.labels)[i % len(settings.movers.labels)]
                started = time.perf_counter()
                rows = await read_movers(conn, window, limit=50)
                reads.append(time.perf_counter() - started)
                per_window[window] = len(rows)
            started = time.perf_counter()
            naive = await naive_movers(conn, settings.movers, moment)
            naive_seconds = time.perf_counter() - started
            assert naive
        database = DatabaseFigures()
        await database.refresh(pool)
        registry = build_registry([*ingest.collectors(), database])
        renders: list[float] = []
        for _ in range(args.reads):
            started = time.perf_counter()
            body = generate_latest(registry)
            renders.append(time.perf_counter() - started)
        series = sum(1 for line in body.decode().splitlines() if not line.startswith("#"))
        await ingest.aclose()
    finally:
        await pool.close()
    refresh = statistics.median(steady)
    return {
        "first_refresh_full_seconds": round(full_seconds, 3),
        "movers_stored": first["movers"],
        "top_rows_read_per_window": per_window,
        "refresh_concurrency": args.concurrency,
        "refresh_seconds": {"median": round(refresh, 3), "max": round(max(steady), 3)},
        "refresh_seconds_one_connection": {
            "median": round(statistics.median(one_connection), 3),
            "max": round(max(one_connection), 3),
        },
        "new_rows_per_minute": int(statistics.median(new_rows)),
        "refresh_seconds_after_history": {"outcomes": NEWCOMERS} | after_history,
        "first_start_live_for_seconds": FIRST_START.total_seconds(),
        "naive_seconds": round(naive_seconds, 3),
        "naive_to_refresh_ratio": round(naive_seconds / refresh, 1),
        "top_movers_read": timed_ms(reads),
        "metrics_render": timed_ms(renders) | {"series": series},
        "targets": {"refresh_seconds": 2.0, "read_ms": 50, "metrics_render_ms": 50},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outcomes", type=int, default=150_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--heartbeat", type=int, default=10, help="minutes between rows")
    parser.add_argument("--refreshes", type=int, default=10)
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument(
        "--short-ids", action="store_true", help="short ids instead of the venues' own shapes"
    )
    parser.add_argument(
        "--concurrency", type=int, default=2, help="database.write_concurrency of the refresh"
    )
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with running_postgres(SERVER) as server:
        prepare_schema(validate_settings({"database": {"url": server.url}}))
        started = time.perf_counter()
        rows = populate(
            server.url, args.outcomes, args.days, args.heartbeat, now, not args.short_ids
        )
        print(f"history: {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
        result = asyncio.run(run(server.url, args, now))
    write_result(
        "movers_refresh",
        {
            "outcomes": args.outcomes,
            "days": args.days,
            "heartbeat_minutes": args.heartbeat,
            "ids": "short" if args.short_ids else "venue shapes",
            "snapshot_rows": rows,
            "server_settings": list(SERVER),
            **result,
        },
    )


if __name__ == "__main__":
    main()
