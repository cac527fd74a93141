"""Peak resident memory of `movers run` tracking ~180,000 outcomes.

Run by hand (not a test): ``.venv/bin/python -m bench.exporter_rss [--polymarket N] [--kalshi N]
[--seconds S]``. Starts a throwaway PostgreSQL cluster and `movers sim` (its own process) with
N Polymarket markets (two outcomes each) and N Kalshi markets (one each; about half of either
universe is open), runs `movers run`
against them for S seconds after its first movers refresh (discovery, sweeps, trades, movers
refreshes), stops it with SIGTERM and reads the peak RSS the kernel accounted to that process.
Result: bench/results/exporter_rss.json. Target: <= 400 MB.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import yaml

from bench.common import write_result
from tests.servers import free_port, running_postgres

SIM_START = "2026-11-20T12:00:00Z"


def sim_config(base_port: int) -> dict[str, object]:
    host = "http://127.0.0.1"
    return {
        "polymarket": {
            "gamma_url": f"{host}:{base_port}",
            "clob_url": f"{host}:{base_port + 1}",
            "data_url": f"{host}:{base_port + 2}",
            "ws_url": f"ws://127.0.0.1:{base_port + 1}/ws/market",
        },
        "kalshi": {
            "rest_url": f"{host}:{base_port + 3}/trade-api/v2",
            "ws_url": f"ws://127.0.0.1:{base_port + 3}/trade-api/ws/v2",
            "requests_per_second": 100,
        },
    }


def wait_for_refresh(port: int, within: float) -> float:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            time.sleep(1)
            continue
        for line in text.splitlines():
            if line.startswith('movers_job_runs_total{job="movers_refresh",outcome="ok"}'):
                return time.monotonic()
        time.sleep(1)
    raise SystemExit("no movers refresh in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # About half of a simulated universe is open and not a Kalshi combo: these track ~180k.
    parser.add_argument("--polymarket", type=int, default=60_000)
    parser.add_argument("--kalshi", type=int, default=250_000)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args()
    base = free_port() // 10 * 10 % 50_000 + 10_000
    folder = Path(tempfile.mkdtemp(prefix="movers-rss-"))
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump({
        "seed": 5, "start": SIM_START,
        "universe": {"polymarket": args.polymarket, "kalshi": args.kalshi},
    }))  # fmt: skip
    metrics_port = free_port()
    config = folder / "movers.yaml"
    config.write_text(yaml.safe_dump({
        "venues": sim_config(base),
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "logging": {"format": "json", "level": "warning"},
    }))  # fmt: skip
    sim = subprocess.Popen(
        [sys.executable, "-m", "exporter", "sim", "--scenario", str(scenario), "--port",
         str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with running_postgres(("fsync=off", "synchronous_commit=off")) as server:
            env = {**os.environ, "MOVERS_DATABASE_URL": server.url, "MOVERS_CONFIG": str(config)}
            started = time.monotonic()
            exporter = subprocess.Popen(
                [sys.executable, "-m", "exporter", "run"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            first = wait_for_refresh(metrics_port, 900)
            time.sleep(args.seconds)
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
            exporter.send_signal(signal.SIGTERM)
            _, status, usage = os.wait4(exporter.pid, 0)
            tracked = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("movers_markets{") and 'status="open"' in line
            )
            with psycopg.connect(server.url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM outcomes o JOIN markets m USING (market_id)"
                    " WHERE m.status = 'open'"
                ).fetchone()
            outcomes = int(row[0]) if row else 0
    finally:
        sim.send_signal(signal.SIGINT)
        sim.wait(30)
    write_result(
        "exporter_rss",
        {
            "universe": {"polymarket_markets": args.polymarket, "kalshi_markets": args.kalshi},
            "open_markets_stored": int(tracked),
            "open_outcomes_tracked": outcomes,
            "seconds_to_first_movers_refresh": round(first - started, 1),
            "seconds_observed_after": args.seconds,
            "exit_status": os.waitstatus_to_exitcode(status),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "target_mb": 400,
        },
    )


if __name__ == "__main__":
    main()
