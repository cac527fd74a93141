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

import os
import signal
import time

import httpx
import psycopg

from bench.common import write_result
from bench.stack import simulated_stack, universe_arguments, wait_for_refresh


def main() -> None:
    scenario, seconds = universe_arguments(__doc__.split("\n")[0], 120)
    with simulated_stack(scenario) as stack:
        started = time.monotonic()
        exporter = stack.start_exporter()
        first = wait_for_refresh(stack.metrics_port, 900)
        time.sleep(seconds)
        text = httpx.get(f"http://127.0.0.1:{stack.metrics_port}/metrics", timeout=10).text
        exporter.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(exporter.pid, 0)
        tracked = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("movers_markets{") and 'status="open"' in line
        )
        with psycopg.connect(stack.server.url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM outcomes o JOIN markets m USING (market_id)"
                " WHERE m.status = 'open'"
            ).fetchone()
        outcomes = int(row[0]) if row else 0
    write_result(
        "exporter_rss",
        {
            "universe": scenario["universe"],
            "open_markets_stored": int(tracked),
            "open_outcomes_tracked": outcomes,
            "seconds_to_first_movers_refresh": round(first - started, 1),
            "seconds_observed_after": seconds,
            "exit_status": os.waitstatus_to_exitcode(status),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "target_mb": 400,
        },
    )


if __name__ == "__main__":
    main()
