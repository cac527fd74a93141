"""Stream-to-commit latency of `movers run` while the market channel carries ~2,000 messages/s.

Run by hand (not a test): ``.venv/bin/python -m bench.stream_latency [--speed X] [--seconds S]``.
Starts a throwaway PostgreSQL cluster, `movers sim` (its own process; its clock runs ``--speed``
times real time so the streamed hot set moves fast enough) and `movers run` streaming the hot set
(1,000 markets, 2,000 outcomes; Kalshi off). After a minute of warm-up it reads `/metrics` twice,
``--seconds`` apart: messages per second from ``movers_websocket_messages_total`` and the 95th
percentile of ``movers_stream_commit_latency_seconds`` (receive -> committed row, the 1 s
coalescing included) over that interval, interpolated within its bucket as Prometheus's
``histogram_quantile`` does. Result: bench/results/stream_latency.json. Target: p95 <= 1 s at
2,000 messages/s.
"""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import write_result
from bench.stack import simulated_stack, wait_for_refresh


def scrape(port: int) -> tuple[float, dict[float, float]]:
    """Messages so far, and the latency histogram's cumulative bucket counts."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    messages, buckets = 0.0, {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "movers_websocket_messages_total":
                messages += sample.value
            if sample.name == "movers_stream_commit_latency_seconds_bucket":
                buckets[float(sample.labels["le"])] = sample.value
    return messages, buckets


def quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    rank, lower, below = q * total, 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower
            share = (rank - below) / (cumulative - below) if cumulative > below else 0.0
            return lower + (bound - lower) * share
        lower, below = bound, cumulative
    return lower


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markets", type=int, default=2400)
    parser.add_argument("--speed", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    scenario = {"seed": 5, "speed": args.speed,
                "universe": {"polymarket": args.markets, "kalshi": 0}}  # fmt: skip

    def stream_only(venues: dict[str, Any]) -> None:
        venues["polymarket"] |= {"hot_size": 1000, "tail_every": "10m", "trades_every": "10m"}
        venues["kalshi"] = {"enabled": False}

    with simulated_stack(scenario, stream_only) as stack:
        port = stack.metrics_port
        exporter = stack.start_exporter()
        try:
            wait_for_refresh(port, 600)
            time.sleep(60)
            messages_before, before = scrape(port)
            started = time.monotonic()
            time.sleep(args.seconds)
            messages_after, after = scrape(port)
            elapsed = time.monotonic() - started
        finally:
            exporter.send_signal(signal.SIGTERM)
            exporter.wait(30)
    rate = (messages_after - messages_before) / elapsed
    write_result(
        "stream_latency",
        {
            "hot_outcomes": 2000,
            "sim_speed": args.speed,
            "seconds_measured": round(elapsed, 1),
            "messages_per_second": round(rate),
            "rows_committed": int(after[float("inf")] - before.get(float("inf"), 0.0)),
            "p50_seconds": round(quantile(0.5, before, after), 3),
            "p95_seconds": round(quantile(0.95, before, after), 3),
            "target_p95_seconds": 1.0,
            "note": "latency runs from the frame's arrival to the committed row; coalescing "
            "(stream.coalesce = 1 s) holds an update up to 1 s by design",
        },
    )


if __name__ == "__main__":
    main()
