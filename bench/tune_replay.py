"""`movers tune` over a week of a large universe: the replay with the shipped files, and a what-if
table of five thresholds.

Run by hand (not a test): ``.venv/bin/python -m bench.tune_replay [--outcomes N] [--days D]``.
Starts a throwaway PostgreSQL cluster, creates ``--outcomes`` outcomes as the movers benchmark
does (4/5 Polymarket, two per market; 1/5 Kalshi; a row every 10 minutes, a row a minute for the
500 hottest), with prices that drift as markets do: most barely move, three in ten swing by up
to 10 pp over days, one in fifty jumps 15 pp once a week (and back at the week's turn). Then it
runs the rollups (the exporter's maintenance keeps them current; not timed), and times the
replay of the whole span through MarketMoveLarge as `alertmanager/` ships it, and the same with
``--window 5m --threshold 3,5,8,10,15``. Results: bench/results/tune_replay.json. Targets: a
7-day replay of 150,000 outcomes in at most 30 s; the what-if in not much more.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import write_result
from bench.movers_refresh import SERVER, populate
from exporter.config import validate_settings
from exporter.service import maintain_once
from exporter.storage.database import Database
from exporter.storage.db import create_pool, prepare_schema
from exporter.tuning import load_replay, read_alerting, what_if
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


async def replay(url: str, days: int, now: datetime) -> dict[str, Any]:
    settings = validate_settings({"database": {"url": url}})
    alerting = read_alerting(
        REPO / "alertmanager" / "rules", REPO / "alertmanager" / "alertmanager.yml"
    )
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        since = now - timedelta(days=days)
        started = time.perf_counter()
        loaded = await load_replay(Database(pool), settings, alerting, since, now)
        outcome = loaded.run()
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = await load_replay(Database(pool), settings, alerting, since, now, "5m", CANDIDATES)
        rows = what_if(again, "5m", CANDIDATES)
        what_if_seconds = time.perf_counter() - started
    finally:
        await pool.close()
    return {
        "replay_seconds": round(seconds, 2),
        "what_if_seconds": round(what_if_seconds, 2),
        "what_if_over_replay": round(what_if_seconds / seconds, 2),
        "markets_with_moves": len(loaded.markets),
        "notifications": outcome.summary()["notifications"],
        "per_day_mean": outcome.summary()["per_day_mean"],
        "what_if_5m": {str(r["threshold_pp"]): r["notifications"] for r in rows},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--outcomes", type=int, default=150_000)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with running_postgres(SERVER) as server:
        settings = validate_settings({"database": {"url": server.url}})
        mode = prepare_schema(settings).mode
        started = time.perf_counter()
        rows = populate(server.url, args.outcomes, args.days, 10, now, price=PRICE)
        print(f"history: {rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        asyncio.run(maintain_once(settings, mode))
        print(f"rollups in {time.perf_counter() - started:.0f} s", flush=True)
        result = asyncio.run(replay(server.url, args.days, now))
    write_result(
        "tune_replay",
        {"outcomes": args.outcomes, "days": args.days, "snapshot_rows": rows, **result,
         "targets": {"replay_seconds": 30.0}},
    )  # fmt: skip


if __name__ == "__main__":
    main()
