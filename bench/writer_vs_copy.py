"""Rows/s of the writer into `snapshots` against COPY of the same rows, native PostgreSQL.

Run by hand (not a test): ``.venv/bin/python -m bench.writer_vs_copy [--rows N] [--batch N]
[--concurrency N]``. Starts a throwaway PostgreSQL cluster (or uses $MOVERS_BENCH_POSTGRES_URL),
migrates it, then each round writes N fresh rows with one writer call (bulk unnest insert,
binary parameters, plain INSERT while no duplicate turns up, split into statements of --batch
rows with --concurrency of them in flight) and COPYs N fresh rows (binary, one connection) into
an identical table. The best round of each gives ``ratio``; the median over rounds of each
round's pair gives ``ratio_median_of_rounds``. The result goes to
bench/results/writer_vs_copy.json.
Target: writer >= 0.7x COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from exporter.config import validate_settings
from exporter.model import Snapshot
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.rows import snapshot_columns
from exporter.storage.writer import Writer
from tests.support.servers import native_postgres

RESULTS = Path(__file__).parent / "results"
COLUMNS = "time, outcome_id, price, bid, ask, last_trade, volume_24h, liquidity"


def make_rows(count: int, round_no: int, outcomes: int = 20_000) -> list[Snapshot]:
    """Distinct rows: ``outcomes`` outcomes, one row each per second, per round a new hour."""
    rng = random.Random(round_no)
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=round_no)
    rows = []
    for i in range(count):
        price = round(rng.uniform(0.02, 0.98), 3)
        rows.append(
            Snapshot(
                time=start + timedelta(seconds=i // outcomes),
                outcome_id=f"polymarket:{10**70 + i % outcomes}",
                price=price,
                bid=round(price - 0.005, 3),
                ask=round(price + 0.005, 3),
                last_trade=price,
                volume_24h=rng.uniform(0, 1e6),
                liquidity=rng.uniform(0, 1e5),
            )
        )
    return rows


async def time_writer(writer: Writer, rows: list[Snapshot]) -> float:
    started = time.perf_counter()
    result = await writer.write_snapshots(rows, change_only=False)
    assert result.written == len(rows), result
    return time.perf_counter() - started


def time_copy(url: str, rows: list[Snapshot]) -> float:
    columns = snapshot_columns(rows)
    records = list(zip(*columns.values(), strict=True))
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY copy_target ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(
                ["timestamptz", "text", "float8", "float8", "float8", "float8", "float8", "float8"]
            )
            for record in records:
                copy.write_row(record)
        conn.commit()
        return time.perf_counter() - started


async def run(
    url: str, rows_per_round: int, batch: int, concurrency: int, rounds: int
) -> dict[str, Any]:
    settings = validate_settings(
        {
            "database": {
                "url": url,
                "write_batch_rows": batch,
                "write_concurrency": concurrency,
                "pool_size": max(4, concurrency),
            }
        }
    )
    report = prepare_schema(settings)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS copy_target")
        conn.execute("CREATE TABLE copy_target (LIKE snapshots INCLUDING ALL)")
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    writer_times, copy_times = [], []
    try:
        writer = Writer.from_settings(pool, report.mode, settings)
        for r in range(rounds):
            # Alternate which goes first so cache warmth does not favour one side.
            data_w, data_c = make_rows(rows_per_round, 2 * r), make_rows(rows_per_round, 2 * r + 1)
            if r % 2 == 0:
                writer_times.append(await time_writer(writer, data_w))
                copy_times.append(time_copy(url, data_c))
            else:
                copy_times.append(time_copy(url, data_c))
                writer_times.append(await time_writer(writer, data_w))
    finally:
        await pool.close()
    writer_rate = rows_per_round / min(writer_times)
    copy_rate = rows_per_round / min(copy_times)
    return {
        "benchmark": "writer_vs_copy",
        "server": "native PostgreSQL",
        "mode": report.mode.value,
        "rows_per_round": rows_per_round,
        "batch": batch,
        "concurrency": concurrency,
        "rounds": rounds,
        "writer_rows_per_s": round(writer_rate),
        "copy_rows_per_s": round(copy_rate),
        "ratio": round(writer_rate / copy_rate, 3),
        # Each round's pair ran back to back on a table of the same size: steadier than best/best.
        "ratio_median_of_rounds": round(
            statistics.median(c / w for w, c in zip(writer_times, copy_times, strict=True)), 3
        ),
        "target_ratio": 0.7,
        "writer_seconds": [round(t, 3) for t in writer_times],
        "copy_seconds": [round(t, 3) for t in copy_times],
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per round and side")
    parser.add_argument("--batch", type=int, default=5_000, help="rows per writer batch")
    parser.add_argument("--concurrency", type=int, default=2, help="statements in flight")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    url = os.environ.get("MOVERS_BENCH_POSTGRES_URL")
    if url:
        result = asyncio.run(run(url, args.rows, args.batch, args.concurrency, args.rounds))
    else:
        with native_postgres() as started:
            result = asyncio.run(run(started, args.rows, args.batch, args.concurrency, args.rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "writer_vs_copy.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
