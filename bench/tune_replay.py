"""`movers tune` over a week of a large universe: the replay with the shipped files, and a what-if
table of five thresholds.

Run by hand (not a test): ``.venv/bin/python -m bench.tune_replay [--outcomes N] [--days D]``.
Starts a throwaway PostgreSQL cluster, creates ``--outcomes`` outcomes as the movers benchmark
does (4/5 Polymarket, two per market; 1/5 Kalshi; a row every 10 minutes, a row a minute for the
500 hottest), with prices that drift as markets do: most barely move, three in ten swing by up
to 10 pp over days, one in fifty jumps 15 pp once a week (and back at the week's turn). Then it
runs the rollups (the exporter's maintenance keeps them current; not timed), and times the
replay of the whole span through MarketMoveLarge as `alertmanager/` ships it (right after the
server starts, then again), and the same with ``--window 5m --threshold 3,5,8,10,15``.
Results: bench/results/tune_replay.json. Targets: a 7-day replay of 150,000 outcomes in at most
30 s; the what-if in not much more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.common import write_result
from bench.movers_refresh import SERVER, populate
from exporter import tuning
from exporter.config import validate_settings
from exporter.storage.database import Database
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.tuning import MoveBounds
from exporter.tuning import TuneJob, load_replay, read_alerting, what_if
from tests.support.servers import running_postgres

REPO = Path(__file__).resolve().parents[1]
PRICE = """round(least(0.99, greatest(0.01,
    0.5 + CASE WHEN abs(hashtext(o.outcome_id || 'a')) %% 10 < 3 THEN 0.1 ELSE 0.005 END
        * sin(2 * pi() * extract(epoch FROM t) / (86400 * (5 + abs(hashtext(o.outcome_id)) %% 10))
              + (abs(hashtext(o.outcome_id || 'p')) %% 628) / 100.0)
    + CASE WHEN abs(hashtext(o.outcome_id || 'j')) %% 50 = 0
            AND extract(epoch FROM t)::bigint %% 604800
                > abs(hashtext(o.outcome_id || 'w')) %% 604800
           THEN 0.15 ELSE 0 END))::numeric, 3)::float8"""
CANDIDATES = [3.0, 5.0, 8.0, 10.0, 15.0]


STAGES: dict[str, tuple[Any, str]] = {
    "days": (MoveBounds, "days"),
    "hours": (MoveBounds, "_read_hours"),
    "move_spans": (tuning, "move_spans"),
    "outcome_rows": (tuning, "outcome_rows"),
    "outcome_info": (tuning, "outcome_info"),
}
"""The replay's reads, timed one by one: ``days`` (``ohlc_1d``) and ``hours`` (``ohlc_1h``, read
once for both passes) are part of ``move_spans``, which adds the arrays' work; the rest of the
replay's time is Python (moves, cap, rule)."""


def timed_reads() -> dict[str, float]:
    """Seconds each of the replay's reads took, summed, while the benchmark runs."""
    spent = dict.fromkeys(STAGES, 0.0)
    for name, (owner, attribute) in STAGES.items():
        inner = getattr(owner, attribute)

        async def timed(*args: Any, _inner: Any = inner, _name: str = name, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await _inner(*args, **kw)
            finally:
                spent[_name] += time.perf_counter() - started

        setattr(owner, attribute, timed)
    return spent


async def replay(url: str, days: int, now: datetime) -> dict[str, Any]:
    settings = validate_settings({"database": {"url": url}})
    alerting = read_alerting(
        REPO / "alertmanager" / "rules", REPO / "alertmanager" / "alertmanager.yml"
    )
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        since = now - timedelta(days=days)
        spent = timed_reads()
        started = time.perf_counter()
        loaded = await load_replay(Database(pool), settings, alerting, since, now)
        outcome = loaded.run()
        seconds = time.perf_counter() - started
        reads = {name: round(value, 2) for name, value in spent.items()}
        print(f"replay {seconds:.1f} s; reads {reads}", flush=True)
        # The same again: the server was just started, so the first read found nothing cached.
        spent.update(dict.fromkeys(spent, 0.0))
        started = time.perf_counter()
        (await load_replay(Database(pool), settings, alerting, since, now)).run()
        warm_seconds = time.perf_counter() - started
        warm_reads = {name: round(value, 2) for name, value in spent.items()}
        print(f"replay again {warm_seconds:.1f} s; reads {warm_reads}", flush=True)
        started = time.perf_counter()
        again = await load_replay(Database(pool), settings, alerting, since, now, "5m", CANDIDATES)
        rows = what_if(again, "5m", CANDIDATES)
        what_if_seconds = time.perf_counter() - started
        # The exporter's hourly replay for the Alerts dashboard: MarketMoveLarge, CategorySurge
        # and the trade signals (this history has no trades).
        files = (REPO / "alertmanager" / "rules", REPO / "alertmanager" / "alertmanager.yml")
        started = time.perf_counter()
        await TuneJob(Database(pool), settings, files).run(now)
        job_seconds = time.perf_counter() - started
    finally:
        await pool.close()
    return {
        "replay_seconds": round(seconds, 2),
        "replay_read_seconds": reads,
        "replay_again_seconds": round(warm_seconds, 2),
        "replay_again_read_seconds": warm_reads,
        "what_if_seconds": round(what_if_seconds, 2),
        "what_if_over_replay": round(what_if_seconds / warm_seconds, 2),
        "hourly_replay_seconds": round(job_seconds, 2),
        "markets_with_moves": len(loaded.markets),
        "notifications": outcome.summary()["notifications"],
        "per_day_mean": outcome.summary()["per_day_mean"],
        "what_if_5m": {str(r["threshold_pp"]): r["notifications"] for r in rows},
    }


ROLLUP_1H = """
INSERT INTO movers_internal.ohlc_1h_store
SELECT date_bin(interval '1 hour', time, TIMESTAMPTZ '2000-01-03 00:00:00+00'), outcome_id,
       (array_agg(price ORDER BY time))[1], max(price), min(price),
       (array_agg(price ORDER BY time DESC))[1], (array_agg(bid ORDER BY time DESC))[1],
       (array_agg(ask ORDER BY time DESC))[1], (array_agg(last_trade ORDER BY time DESC))[1],
       (array_agg(volume_24h ORDER BY time DESC))[1], (array_agg(liquidity ORDER BY time DESC))[1],
       count(*)
FROM snapshots WHERE time >= %(lo)s AND time < %(hi)s
GROUP BY 1, 2
"""


def rollups(url: str, start: datetime, end: datetime) -> None:
    """``ohlc_1h`` and ``ohlc_1d`` materialised up to ``end`` as the exporter's rollups leave
    them, the hours straight from ``snapshots`` a day at a time (the exporter goes through
    ``ohlc_1m``, which the replay does not read, at many times the cost: 36 minutes at 60,000
    outcomes). ``ohlc_1m`` is left empty below that hour (:func:`minute_rollup` fills the
    hour after it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET work_mem = '512MB'")
        day = start.replace(minute=0, second=0, microsecond=0)  # whole hours a statement
        while day < end:
            conn.execute(ROLLUP_1H, {"lo": day, "hi": min(day + timedelta(days=1), end)})
            day += timedelta(days=1)
        conn.execute("UPDATE movers_internal.rollup_state SET watermark = %s"
                     " WHERE name IN ('ohlc_1m', 'ohlc_1h')", (end,))  # fmt: skip
        conn.execute("INSERT INTO movers_internal.ohlc_1d_store"
                     " SELECT * FROM movers_internal.ohlc_1d_compute('-infinity', %s)",
                     (end,))  # fmt: skip
        conn.execute("UPDATE movers_internal.rollup_state SET watermark = %s"
                     " WHERE name = 'ohlc_1d'", (end,))  # fmt: skip
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def minute_rollup(url: str, now: datetime) -> None:
    """``ohlc_1m`` materialised from its watermark up to ``now``'s minute, as the exporter's
    maintenance keeps it (every minute): the views then compute only the current hour from
    ``ohlc_1m`` and the current minute from ``snapshots``, as in a running stack."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT watermark FROM movers_internal.rollup_state"
                           " WHERE name = 'ohlc_1m'").fetchone()  # fmt: skip
        assert row is not None
        minute = now.replace(second=0, microsecond=0)
        if row[0] >= minute:
            return
        conn.execute("INSERT INTO movers_internal.ohlc_1m_store"
                     " SELECT * FROM movers_internal.ohlc_1m_compute(%s, %s)",
                     (row[0], minute))  # fmt: skip
        conn.execute("UPDATE movers_internal.rollup_state SET watermark = %s"
                     " WHERE name = 'ohlc_1m'", (minute,))  # fmt: skip
        conn.execute("VACUUM ANALYZE movers_internal.ohlc_1m_store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outcomes", type=int, default=150_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None,
                        help="a folder for the cluster, kept afterwards and used again when it "
                             "holds the same --outcomes and --days")  # fmt: skip
    args = parser.parse_args()
    marker = args.keep / "history.json" if args.keep else None
    made = json.loads(marker.read_text()) if marker and marker.exists() else {}
    with running_postgres(SERVER, keep=args.keep) as server:
        if made.get("outcomes") == args.outcomes and made.get("days") == args.days:
            now, rows = datetime.fromisoformat(made["now"]), made["rows"]
            print(f"history: {rows:,} rows kept from {made['now']}", flush=True)
            # Migrations added since the cluster was kept (0013 rebuilds snapshots' key).
            started = time.perf_counter()
            prepare_schema(validate_settings({"database": {"url": server.url}}))
            print(f"schema up to date in {time.perf_counter() - started:.0f} s", flush=True)
        else:
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            settings = validate_settings({"database": {"url": server.url}})
            prepare_schema(settings)
            started = time.perf_counter()
            rows = populate(server.url, args.outcomes, args.days, 10, now, price=PRICE)
            print(f"history: {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
            started = time.perf_counter()
            end = now.replace(minute=0)
            rollups(server.url, now - timedelta(days=args.days + 1), end)
            print(f"rollups in {time.perf_counter() - started:.0f} s", flush=True)
            if marker:
                marker.write_text(json.dumps({"outcomes": args.outcomes, "days": args.days,
                                              "now": now.isoformat(), "rows": rows}))  # fmt: skip
        minute_rollup(server.url, now)
        result = asyncio.run(replay(server.url, args.days, now))
    write_result(
        "tune_replay",
        {"outcomes": args.outcomes, "days": args.days, "snapshot_rows": rows, **result,
         "targets": {"replay_seconds": 30.0}},
    )  # fmt: skip


if __name__ == "__main__":
    main()
