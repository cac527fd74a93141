"""From a price jump on the venue to the Discord stand-in: p50/p95/max with the shipped timings.

Run by hand (not a test): ``.venv/bin/python -m bench.notify_latency [--jumps N] [--polled N]
[--every S] [--warmup S]``. The simulator runs in this process (its clock's origin is known, so
each scripted jump's wall time is exact); `movers run` with the default configuration (only the
venues' URLs, the metrics port and ``signals.alertmanager_url`` set); Prometheus with the shipped
prometheus.yml and the rules as mounted; Alertmanager with the shipped alertmanager.yml and a
stand-in for the Discord and Slack webhooks that notes when each message arrives.

Jumps: ``--jumps`` Polymarket markets of the hot set (streamed over the market channel) and
``--polled`` Kalshi markets of its hot set (polled over REST every ``hot_every``, 15 s: without an
API key Kalshi streams nothing), one every ``--every`` seconds after ``--warmup`` (the first
backfill done, the windows holding history), each by 15 pp, each a market of its own. A jump's
latency: the first markets-channel message naming the market, minus the jump's time.

Result: bench/results/notify_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from aiohttp import web

from bench.common import write_result
from exporter.sim import Simulator, load_scenario
from exporter.sim.world import KalshiMarket, PolyMarket, SimMarket, World
from tests.support.alerting import ALERTMANAGER_YML, PROMETHEUS_YML, RULES, tool
from tests.support.servers import free_port, running_postgres

REPO = Path(__file__).resolve().parents[1]
WITHIN = 180.0
"""A jump not notified within this is counted as missed."""


class Recorder:
    """The Discord and Slack webhooks: each message's arrival (monotonic seconds) and text."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, str, str]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            if "embeds" in body:
                text = body.get("content", "") + "".join(
                    f"\n{e.get('title', '')}\n{e.get('description', '')}" for e in body["embeds"]
                )
            else:
                text = "".join(f"\n{a.get('title', '')}\n{a.get('text', '')}"
                               for a in body.get("attachments", []))  # fmt: skip
            self.messages.append((time.monotonic(), request.path, text))
            if request.path.startswith("/discord/"):
                return web.Response(status=204)
            return web.Response(text="ok")  # Slack's answer

        app = web.Application()
        app.router.add_post("/{app}/{channel}", hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _start(command: list[str], log: Path, env: dict[str, str] | None = None) -> Any:
    """A server process writing to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(processes: list[Any]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        process.wait(30)


def _open_liquid(markets: list[Any], count: int, spread_m: int, volume: float) -> list[SimMarket]:
    """The ``count`` busiest open markets with a tight quote that pass the default movers
    filters (``volume``: the venue's ``min_volume_24h``), each in an event of its own."""
    chosen: list[SimMarket] = []
    events: set[str] = set()
    for market in sorted(markets, key=lambda m: -m.volume_24h):
        event = market.event.ticker if isinstance(market, KalshiMarket) else market.event.slug
        multivariate = isinstance(market, KalshiMarket) and market.event.multivariate
        if (
            market.status != "open"
            or multivariate
            or event in events
            or market.volume_24h < volume
            or market.ask_m - market.bid_m > spread_m
            or not 150 < market.bid_m < 850
        ):
            continue
        events.add(event)
        chosen.append(market)
        if len(chosen) == count:
            break
    return chosen


def _timeline(world: World, args: argparse.Namespace) -> list[tuple[float, SimMarket]]:
    streamed = _open_liquid(world.poly_markets, args.jumps, 50, 1_000)
    polled = _open_liquid(world.kalshi_markets, args.polled, 30, 100)
    if len(streamed) < args.jumps or len(polled) < args.polled:
        raise SystemExit(f"only {len(streamed)} + {len(polled)} markets pass the filters: "
                         "a larger --polymarket/--kalshi universe, or fewer jumps")  # fmt: skip
    order: list[SimMarket] = []
    for i in range(max(len(streamed), len(polled))):
        order += streamed[i : i + 1]
        if i % max(1, round(len(streamed) / max(1, len(polled)))) == 0 and polled:
            order.append(polled.pop(0))
    order += polled
    return [(args.warmup + i * args.every, m) for i, m in enumerate(order)]


def _jump_entry(at: float, market: SimMarket, up: bool) -> dict[str, Any]:
    mid = (market.bid_m + market.ask_m) / 2000
    to = round(min(0.9, mid + 0.15) if up else max(0.1, mid - 0.15), 3)
    ref = market.key
    return {"at": at, "jump": {"venue": market.venue, "market": ref, "to": to}}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50_seconds": round(statistics.median(values), 1),
        "p95_seconds": round(_percentile(values, 0.95), 1),
        "max_seconds": round(max(values), 1),
        "min_seconds": round(min(values), 1),
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0)
    base = {"seed": 5, "start": start.isoformat().replace("+00:00", "Z"),
            "universe": {"polymarket": args.polymarket, "kalshi": args.kalshi}}  # fmt: skip
    plan = _timeline(World(load_scenario(base), start), args)
    timeline = [_jump_entry(at, m, i % 2 == 0) for i, (at, m) in enumerate(plan)]
    scenario = load_scenario({**base, "timeline": timeline})
    folder = Path(tempfile.mkdtemp(prefix="movers-latency-"))
    recorder = Recorder()
    await recorder.start()
    processes: list[Any] = []
    try:
        with running_postgres(("fsync=off", "synchronous_commit=off")) as server:
            async with Simulator(scenario) as sim:
                origin = time.monotonic() - sim.clock.elapsed()
                assert sim.urls is not None
                metrics, am_port, prom_port = free_port(), free_port(), free_port()
                hooks = f"http://127.0.0.1:{recorder.port}"
                # Alertmanager: the shipped configuration, the webhook URLs in its secret files.
                secrets = folder / "secrets"
                secrets.mkdir()
                config_text = (
                    ALERTMANAGER_YML.read_text()
                    .replace("/run/alertmanager/secrets/", f"{secrets}/")
                    .replace("http://exporter:9464", f"http://127.0.0.1:{metrics}")
                    .replace("/etc/alertmanager/templates/", f"{REPO}/alertmanager/templates/")
                )
                for app in ("discord", "slack"):
                    for channel in ("markets", "ops"):
                        (secrets / f"{app}_{channel}_webhook_url").write_text(
                            f"{hooks}/{app}/{channel}\n"
                        )
                (secrets / "alerts_webhook_token").write_text("")
                (folder / "alertmanager.yml").write_text(config_text)
                processes.append(_start(
                    [tool("alertmanager"), f"--config.file={folder / 'alertmanager.yml'}",
                     f"--storage.path={folder / 'am-data'}",
                     f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                    folder / "alertmanager.log",
                ))  # fmt: skip
                # Prometheus: the shipped prometheus.yml, the rules as compose mounts them.
                prom_text = (
                    PROMETHEUS_YML.read_text()
                    .replace("exporter:9464", f"127.0.0.1:{metrics}")
                    .replace("alertmanager:9093", f"127.0.0.1:{am_port}")
                    .replace("localhost:9090", f"127.0.0.1:{prom_port}")
                    .replace("/etc/prometheus/rules/", f"{RULES}/")
                )
                (folder / "prometheus.yml").write_text(prom_text)
                processes.append(_start(
                    [tool("prometheus"), f"--config.file={folder / 'prometheus.yml'}",
                     f"--storage.tsdb.path={folder / 'prom-data'}",
                     f"--web.listen-address=127.0.0.1:{prom_port}"],
                    folder / "prometheus.log",
                ))  # fmt: skip
                # The exporter: defaults, pointed at the simulator, Alertmanager and its port.
                config = folder / "movers.yaml"
                config.write_text(yaml.safe_dump({
                    "venues": sim.urls.venues(),
                    "metrics": {"host": "127.0.0.1", "port": metrics},
                    "signals": {"alertmanager_url": f"http://127.0.0.1:{am_port}"},
                    "logging": {"format": "json", "level": "warning"},
                }))  # fmt: skip
                env = {**os.environ, "MOVERS_DATABASE_URL": server.url,
                       "MOVERS_CONFIG": str(config)}  # fmt: skip
                processes.append(
                    _start([sys.executable, "-m", "exporter", "run"], folder / "exporter.log", env)
                )
                last = plan[-1][0] if plan else 0.0
                print(f"{len(plan)} jumps from {args.warmup:.0f} s to {last:.0f} s; {folder}",
                      flush=True)  # fmt: skip
                try:
                    while sim.clock.elapsed() < last + WITHIN:
                        await asyncio.sleep(5)
                        for process in processes:
                            if process.poll() is not None:
                                raise SystemExit(f"{process.args[0]} exited: see {folder}")
                    with psycopg.connect(server.url) as conn:
                        rows = conn.execute("SELECT market_id, title FROM markets").fetchall()
                        titles: dict[str, str] = dict(rows)
                finally:
                    _stop(processes)
    finally:
        _stop(processes)
        await recorder.stop()
    (folder / "messages.json").write_text(json.dumps(recorder.messages, indent=1))

    prefixes: dict[str, int] = {}
    for name in titles.values():
        prefixes[name[:60]] = prefixes.get(name[:60], 0) + 1
    found: dict[str, list[float]] = {"streamed": [], "polled": []}
    missed: dict[str, int] = {"streamed": 0, "polled": 0}
    ambiguous = 0
    for at, market in plan:
        kind = "streamed" if isinstance(market, PolyMarket) else "polled"
        title = titles.get(f"{market.venue}:{market.key}")
        if title is None or prefixes[title[:60]] > 1:
            ambiguous += 1
            continue
        when = origin + at
        arrivals = [t - when for t, path, text in recorder.messages
                    if path == "/discord/markets" and t >= when and title[:60] in text]  # fmt: skip
        if arrivals and arrivals[0] <= WITHIN:
            found[kind].append(arrivals[0])
        else:
            missed[kind] += 1
    shipped = yaml.safe_load(PROMETHEUS_YML.read_text())["global"]
    return {
        "benchmark": "notify_latency",
        "universe": base["universe"],
        "timings": {
            "movers_every": "15s (default)",
            "scrape_interval": shipped["scrape_interval"],
            "evaluation_interval": shipped["evaluation_interval"],
            "market_move_for": "none; keep_firing_for 5m",
            "group_wait_market_move": "5s; group_interval 10s",
            "kalshi_hot_every": "15s (polled: no API key, no stream)",
        },
        "jumps": len(plan),
        "streamed": _summary(found["streamed"]) | {"missed": missed["streamed"]},
        "polled": _summary(found["polled"]) | {"missed": missed["polled"]},
        "ambiguous_titles_skipped": ambiguous,
        "target_p95_seconds": {"streamed": 60, "polled": 75},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polymarket", type=int, default=6_000)
    parser.add_argument("--kalshi", type=int, default=3_000)
    parser.add_argument("--jumps", type=int, default=20)
    parser.add_argument("--polled", type=int, default=10)
    parser.add_argument("--every", type=float, default=12.0)
    parser.add_argument("--warmup", type=float, default=480.0)
    args = parser.parse_args()
    result = asyncio.run(_run(args))
    write_result("notify_latency", result)
    print(yaml.safe_dump(result, sort_keys=False))


if __name__ == "__main__":
    main()
