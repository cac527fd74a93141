"""What the end-to-end benchmarks share: `movers sim` in its own process, a throwaway PostgreSQL
cluster, and a movers.yaml pointing `movers run` at both."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.servers import NativePostgres, free_port, running_postgres

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
            if line.startswith('movers_job_runs_total{job_name="movers_refresh",outcome="ok"}'):
                return time.monotonic()
        time.sleep(1)
    raise SystemExit("no movers refresh in time")


@dataclass(frozen=True)
class Stack:
    server: NativePostgres
    env: dict[str, str]
    """The environment `movers run` needs (database URL and config file)."""
    metrics_port: int

    def start_exporter(self, log: Path | None = None) -> subprocess.Popen[bytes]:
        """``movers run``; its log (JSON lines on stderr) into ``log`` when given."""
        err = log.open("wb") if log is not None else subprocess.DEVNULL
        return subprocess.Popen(
            [sys.executable, "-m", "exporter", "run"], env=self.env,
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip


@contextlib.contextmanager
def simulated_stack(
    scenario: dict[str, Any],
    adjust: Callable[[dict[str, Any]], None] | None = None,
    *,
    separate: bool = False,
) -> Iterator[Stack]:
    """The simulator (``scenario``) and a cluster for the block; ``adjust`` may change the
    ``venues`` section of the exporter's configuration. ``separate``: one simulator process a
    venue (the same world), as the venues are separate servers: a simulator busy computing one
    venue's history does not hold the other's answers back."""
    base = free_port() // 10 * 10 % 50_000 + 10_000
    folder = Path(tempfile.mkdtemp(prefix="movers-bench-"))
    scenario_file = folder / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump({"start": SIM_START, **scenario}))
    metrics_port = free_port()
    bases = [base, base + 5] if separate else [base]
    venues = sim_config(base)
    if separate:
        venues["kalshi"] = sim_config(base + 5)["kalshi"]
    if adjust is not None:
        adjust(venues)
    config = folder / "movers.yaml"
    config.write_text(yaml.safe_dump({
        "venues": venues,
        "metrics": {"host": "127.0.0.1", "port": metrics_port},
        "logging": {"format": "json", "level": "warning"},
    }))  # fmt: skip
    command = [sys.executable, "-m", "exporter", "sim", "--scenario", str(scenario_file)]
    sims = [
        subprocess.Popen(
            [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for port in bases
    ]
    try:
        with running_postgres(("fsync=off", "synchronous_commit=off")) as server:
            env = {**os.environ, "MOVERS_DATABASE_URL": server.url, "MOVERS_CONFIG": str(config)}
            yield Stack(server, env, metrics_port)
    finally:
        for sim in sims:
            sim.send_signal(signal.SIGINT)
        for sim in sims:
            sim.wait(30)


def universe_arguments(description: str, seconds: float) -> tuple[dict[str, Any], float]:
    """The simulated universe of the exporter benchmarks (``--polymarket``, ``--kalshi``: what
    discovery finds open of these defaults, two outcomes a Polymarket market and one a Kalshi
    one, is ~180k outcomes, the targets'; 60,000 and 250,000 track ~336k) and ``--seconds``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--polymarket", type=int, default=32_000)
    parser.add_argument("--kalshi", type=int, default=134_000)
    parser.add_argument("--seconds", type=float, default=seconds)
    args = parser.parse_args()
    return {"seed": 5, "universe": {"polymarket": args.polymarket, "kalshi": args.kalshi}}, float(
        args.seconds
    )
