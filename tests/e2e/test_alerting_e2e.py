"""Alerting end to end with real servers on 127.0.0.1: simulator (a scripted jump, a calm, a
venue stall) -> `movers run` -> Prometheus (the shipped rules) -> Alertmanager (the shipped routes,
inhibitions and templates) -> stand-ins for Discord and Slack, and the exporter's alert history.

The test configuration differs from the shipped one only in timings: 1 s scrapes and evaluations,
`for`/`keep_firing_for` of the rules exercised here cut to seconds, Alertmanager's group timers cut
to seconds, and IngestStale's threshold cut to 8 s."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.world import World
from exporter.storage.db import prepare_schema
from tests.support.alerting import (
    PROMETHEUS_YML,
    ChatStandIn,
    alertmanager,
    alertmanager_config,
    copy_rules,
    matched,
    predicted_moves,
    prometheus,
)
from tests.support.databases import REPO, Database
from tests.support.grafana import TimeRange, expand_promql, promql_expressions
from tests.support.running import Exporter, key, until_async

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
JUMP, CALM, STALL = 600, 1200, 1800
"""Simulated seconds of the scripted events."""
OPEN = {"min_volume_24h": 0, "max_spread": None}
PAIR_LABEL = "Duarte signs, on both venues"


def _kalshi(world: World) -> list[Any]:
    return [m for m in world.kalshi_markets if not m.event.multivariate]


def _scenario() -> tuple[Any, World]:
    base = {"seed": 21, "universe": {"polymarket": 100, "kalshi": 100}}
    world = World(load_scenario(base), T0)
    kalshi, paired = _kalshi(world)[:2]
    timeline = [
        {"at": JUMP, "jump": {"venue": "polymarket", "market": 3, "from": 0.30, "to": 0.42}},
        {"at": JUMP, "jump": {"venue": "kalshi", "market": kalshi.ticker, "from": 0.60,
                              "to": 0.45}},
        # The Polymarket market's pair on Kalshi stays near 30¢: the jump opens a 12 pp spread.
        {"at": JUMP, "jump": {"venue": "kalshi", "market": paired.ticker, "from": 0.30,
                              "to": 0.30}},
        {"at": CALM, "jump": {"venue": "kalshi", "market": kalshi.ticker, "to": 0.60}},
        {"at": STALL, "for": "1d", "server_error": {"venue": "polymarket", "status": 503}},
        # The stream goes quiet too (sockets open, no market data), or it would keep prices coming.
        {"at": STALL, "for": "1d", "silence": {"venue": "polymarket"}},
    ]  # fmt: skip
    return load_scenario({**base, "timeline": timeline}), world


TUNE_LATENCY = 3.0
"""Seconds from the replay's instant of a message to its arrival here at most: the refresh
(every second), a scrape and an evaluation (a second apart each) and the webhook's way."""


async def _tune_agrees(
    exporter: Exporter, files: tuple[Path, Path], chat: ChatStandIn, since: float, cut: float
) -> None:
    """`movers tune`, on the files this test's Prometheus and Alertmanager load and the
    exporter's settings, predicts the MarketMoveLarge messages they delivered to Discord from
    ``since`` to ``cut``, market by market, exactly but for the one boundary case (README, Alert
    tuning): a message within :data:`TUNE_LATENCY` of the cut may fall on either side of it, so
    such a market may differ by one."""
    moment = lambda t: datetime.fromtimestamp(t, UTC).isoformat()  # noqa: E731
    await asyncio.sleep(2 * TUNE_LATENCY)  # the messages of the moves before the cut arrive
    until = time.time()
    tune = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "tune", "--json", "--since", moment(since),
        "--until", moment(until), "--rules", str(files[0]), "--alertmanager", str(files[1]),
        env=exporter.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await tune.communicate()
    assert tune.returncode == 0, err.decode()[-3000:]
    predicted = [p for p in predicted_moves(json.loads(out)) if p[0] <= cut]
    delivered = chat.moves("/discord/markets", since, cut + TUNE_LATENCY)
    near = {t for at, t in predicted if at > cut - TUNE_LATENCY}
    near |= {t for at, t in chat.moves("/discord/markets", cut, cut + 2 * TUNE_LATENCY)}
    counts: dict[str, list[int]] = {}
    for index, found in enumerate((predicted, delivered)):
        for _, title in found:
            counts.setdefault(title, [0, 0])[index] += 1
    same = matched(predicted, delivered, 1, TUNE_LATENCY)
    report = (f"movers tune predicted {len(predicted)} MarketMoveLarge messages, "
              f"{len(delivered)} delivered, {same} matched (market, time); per market "
              f"(predicted, delivered): {counts}")  # fmt: skip
    print(report)
    assert len(counts) >= 2, report  # the scripted jumps at least
    for title, (p, d) in counts.items():
        assert abs(p - d) <= (1 if title in near else 0), report
    assert same >= len(delivered) - len(near), report


def _shorten_rules(folder: Path) -> Path:
    """The shipped rules with this test's timings (see the module docstring)."""
    rules = copy_rules(folder)
    for path in rules.glob("*.yml"):
        data = yaml.safe_load(path.read_text())
        for group in data["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") in ("MarketMoveLarge", "IngestStale", "PairDivergence"):
                    rule["for"] = "2s"
                    if "keep_firing_for" in rule:
                        rule["keep_firing_for"] = "1s"
                if rule.get("record") == "movers:alert_threshold_ingest_stale_seconds":
                    rule["expr"] = "vector(8)"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return rules


def _prometheus_config(folder: Path, rules: Path, exporter: int, am: int) -> Path:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s",
                         "scrape_timeout": "1s"}  # fmt: skip
    config["rule_files"] = [str(rules / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{am}"]}]
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [f"127.0.0.1:{exporter}"]}]}
        for job in config["scrape_configs"]
        if job["job_name"] == "movers"  # the limits of the shipped job, on the test's port
    ]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _fast_alertmanager(path: Path) -> None:
    config = yaml.safe_load(path.read_text())
    routes = [config["route"], *config["route"]["routes"]]
    for route in routes:
        route |= {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "3s"}
    for route in config["route"]["routes"]:
        for sub in route.get("routes") or []:
            if 'alertname = "PairDivergence"' in sub.get("matchers", []):
                sub["group_wait"] = "1s"
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _seed_history(db: Database, outcomes: dict[str, float]) -> None:
    """Each outcome's price 7 minutes ago, so the 5m window has a price to move from."""
    with db.connect() as conn:
        for outcome, price in outcomes.items():
            conn.execute(
                "INSERT INTO snapshots (time, outcome_id, price, bid, ask)"
                " VALUES (now() - interval '7 minutes', %s, %s, %s, %s)",
                (outcome, price, price - 0.01, price + 0.01),
            )


@contextlib.asynccontextmanager
async def _ticking(sim: Simulator) -> AsyncIterator[None]:
    """Simulated time runs at 20x in the background, so prices keep changing (change-only storage
    writes a row only on change)."""

    async def tick() -> None:
        while True:
            sim.advance(5)
            await asyncio.sleep(0.25)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _advance_to(sim: Simulator, moment: float) -> None:
    now = sim.clock.elapsed()
    if moment > now:
        sim.advance(moment - now)


async def _am_alerts(am_url: str, **labels: str) -> list[dict[str, Any]]:
    matchers = [f'{k}="{v}"' for k, v in labels.items()]
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{am_url}/api/v2/alerts", params=[("filter", m) for m in matchers]
        )
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()
    return result


async def test_a_jump_is_notified_in_discord_and_slack_resolves_and_a_stall_inhibits(
    pg: Database, tmp_path: Path
) -> None:
    scenario, world = _scenario()
    poly = world.poly_markets[3]
    kalshi, paired = _kalshi(world)[:2]
    poly_id, kalshi_id = f"polymarket:{poly.condition_id}", f"kalshi:{kalshi.ticker}"
    # The jumping Polymarket market and a Kalshi market that stays: a cross-venue pair.
    (tmp_path / "pairs.yaml").write_text(yaml.safe_dump({"pairs": [
        {"polymarket": poly.condition_id, "kalshi": paired.ticker, "label": PAIR_LABEL},
    ]}))  # fmt: skip
    prepare_schema(pg.settings())
    _seed_history(pg, {f"polymarket:{poly.tokens[0]}": 0.30, kalshi_id: 0.60})
    chat = ChatStandIn()
    await chat.start()
    try:
        await _run(scenario, pg, chat, tmp_path, poly_id, kalshi_id)
    finally:
        await chat.stop()


async def _run(
    scenario: Any, pg: Database, chat: ChatStandIn, tmp_path: Path, poly_id: str, kalshi_id: str
) -> None:
    hooks = f"http://127.0.0.1:{chat.port}"
    async with Simulator(scenario, clock=ManualClock(T0)) as sim:
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["polymarket"] |= {
            "hot_every": 1,
            "tail_every": 1,
            "trades_every": 5,
            "retry": {"attempts": 2, "wait_initial": 0.1, "wait_max": 0.2},
        }
        venues["kalshi"] |= {
            "prices_every": 1,
            "hot_every": 1,
            "trades_every": 5,
            "requests_per_second": 50,
            # Watched with a 5m threshold of its own (4 pp): its -15 pp drop fires through the
            # rule's watched branch (movers_watch_threshold_move_pp).
            "watchlist": [{"market": kalshi_id.split(":", 1)[1], "move_pp": {"5m": 4}}],
        }
        exporter = Exporter(pg.url, {
            "venues": venues,
            "movers": {"windows": ["5m"], "every": "1s",
                       "filters": {"polymarket": OPEN, "kalshi": OPEN}},
            "pairs": {"file": str(tmp_path / "pairs.yaml"), "every": "1s"},
            # The Alerts dashboard's replay, soon enough for its panels to have data here.
            "tune": {"every": "5s", "rules": str(REPO / "alertmanager" / "rules"),
                     "alertmanager": str(REPO / "alertmanager" / "alertmanager.yml")},
        }, tmp_path)  # fmt: skip
        am_config = alertmanager_config(
            tmp_path,
            {
                "discord_markets_webhook_url": f"{hooks}/discord/markets",
                "discord_ops_webhook_url": f"{hooks}/discord/ops",
                "slack_markets_webhook_url": f"{hooks}/slack/markets",
                "slack_ops_webhook_url": f"{hooks}/slack/ops",
            },
            f"http://127.0.0.1:{exporter.port}/alerts/webhook",
        )
        _fast_alertmanager(am_config)
        rules = _shorten_rules(tmp_path)
        with alertmanager(am_config, tmp_path) as am:
            prom_config = _prometheus_config(tmp_path, rules, exporter.port, am.port)
            with prometheus(prom_config, tmp_path) as prom:
                await exporter.start()
                try:
                    async with _ticking(sim):
                        await _scenario_plays_out(sim, exporter, chat, am.url, pg, poly_id,
                                                  kalshi_id, (rules, am_config))  # fmt: skip
                        await _dashboard_and_rule_queries_have_data(prom.url, _exprs(rules))
                finally:
                    code, err, _ = await exporter.stop()
                assert code == 0, err[-3000:]


async def _scenario_plays_out(
    sim: Simulator,
    exporter: Exporter,
    chat: ChatStandIn,
    am_url: str,
    pg: Database,
    poly_id: str,
    kalshi_id: str,
    files: tuple[Path, Path],
) -> None:
    await exporter.wait_for(
        lambda s: (
            all(
                key("movers_last_snapshot_timestamp_seconds", venue=v) in s
                for v in ("polymarket", "kalshi")
            )
            and bool(s.get(key("movers_job_runs_total", job_name="movers_refresh", outcome="ok")))
            and all(
                s.get(key("movers_job_runs_total", job_name=f"{v}_discovery", outcome="ok"))
                for v in ("polymarket", "kalshi")
            )
        ),
        60,
        "first prices and movers refresh",
    )
    with pg.connect() as conn:
        titles = dict(
            conn.execute(
                "SELECT market_id, title FROM markets WHERE market_id IN (%s, %s)",
                (poly_id, kalshi_id),
            ).fetchall()
        )
    poly_title, kalshi_title = titles[poly_id], titles[kalshi_id]
    since = time.time()

    # The jump: +12 pp on Polymarket, -15 pp on Kalshi, over the 5m window.
    _advance_to(sim, JUMP + 1)
    up = re.compile(r"\+1[12]\.\d pp")
    down = re.compile(r"-1[45]\.\d pp")
    for path in ("/discord/markets", "/slack/markets"):
        text = await chat.wait_for(
            path, lambda t: poly_title[:40] in t and bool(up.search(t)), 45,
            f"{path}: the Polymarket jump",
        )  # fmt: skip
        assert "MarketMoveLarge" in text
        assert "30.0¢ → 42.0¢" in text or "→ 42" in text
        await chat.wait_for(
            path, lambda t: kalshi_title[:40] in t and bool(down.search(t)), 30,
            f"{path}: the Kalshi drop",
        )  # fmt: skip
    discord = next(b for p, b in chat.received if p == "/discord/markets")
    assert len(discord["embeds"][0]["title"]) <= 256
    # The pair: Polymarket jumped, its Kalshi twin stayed near 30¢: PairDivergence, with both
    # prices and both links, in each markets channel.
    for path in ("/discord/markets", "/slack/markets"):
        text = await chat.wait_for(
            path, lambda t: PAIR_LABEL in t and "pp apart" in t, 30, f"{path}: the pair apart",
        )  # fmt: skip
        assert "PairDivergence" in text
        assert re.search(r"\+1[12]\.\d pp apart", text), text
        assert "polymarket.com" in text, text
        assert "kalshi.com" in text, text

    # The Kalshi market calms (back where it started): the alert resolves, in the history only
    # (market moves send no resolved message).
    _advance_to(sim, CALM + 1)

    async def kalshi_resolved() -> bool:
        with pg.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM alerts WHERE market_id = %s AND status = 'resolved'", (kalshi_id,)
            ).fetchone()
        return row is not None

    await until_async(kalshi_resolved, 45, "the Kalshi alert resolved in the history")
    for path in ("/discord/markets", "/slack/markets"):
        assert not [t for t in chat.texts(path) if "resolved" in t.lower()], chat.texts(path)

    # The Polymarket jump still fires: its market's group repeats every 10 s (the group's
    # interval; the repeat interval cut to 3 s), which the replay must predict too.
    await asyncio.sleep(max(0.0, since + 32 - time.time()))
    await _tune_agrees(exporter, files, chat, since, time.time())

    # Polymarket stalls (every REST call answers 503): IngestStale fires for it, and its mover
    # alert, still firing on the last prices, is inhibited.
    _advance_to(sim, STALL + 1)
    await chat.wait_for(
        "/discord/ops", lambda t: "IngestStale" in t and "polymarket" in t, 60,
        "IngestStale for polymarket in the ops channel",
    )  # fmt: skip

    async def poly_suppressed() -> bool:
        alerts = await _am_alerts(am_url, alertname="MarketMoveLarge", venue="polymarket")
        return bool(alerts) and all(
            a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in alerts
        )

    await until_async(poly_suppressed, 20, "the Polymarket mover alert inhibited")
    before = sum(poly_title[:40] in t for t in chat.texts("/discord/markets"))
    await asyncio.sleep(5)  # longer than the test's repeat_interval (3 s)
    after = sum(poly_title[:40] in t and "FIRING" in t for t in chat.texts("/discord/markets"))
    assert after <= before  # no further notification of the inhibited alert
    kalshi_stale = await _am_alerts(am_url, alertname="IngestStale", venue="kalshi")
    assert kalshi_stale == []

    # The history holds every notification, firing and resolved, once each.
    async def history() -> set[tuple[str, str, str | None]]:
        with pg.connect() as conn:
            rows = conn.execute("SELECT alertname, status, venue FROM alerts").fetchall()
        found = {(r[0], r[1], r[2]) for r in rows}
        wanted = {
            ("MarketMoveLarge", "firing", "polymarket"),
            ("MarketMoveLarge", "firing", "kalshi"),
            ("MarketMoveLarge", "resolved", "kalshi"),
            ("IngestStale", "firing", "polymarket"),
            ("Watchdog", "firing", None),
        }
        seen.append(found)
        return found if wanted <= found else set()

    seen: list[set[tuple[str, str, str | None]]] = []
    try:
        await until_async(history, 20, "the alert history in the alerts table")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; stored {seen[-1:]}") from None
    with pg.connect() as conn:
        (dupes,) = conn.execute(
            "SELECT count(*) FROM (SELECT fingerprint, starts_at, status FROM alerts"
            " GROUP BY 1, 2, 3 HAVING count(*) > 1) d"
        ).fetchone() or (0,)
        stored = conn.execute(
            "SELECT summary, labels ->> 'url', annotations ->> 'runbook_url' FROM alerts"
            " WHERE alertname = 'MarketMoveLarge' AND market_id = %s AND status = 'firing'",
            (poly_id,),
        ).fetchone()
    assert dupes == 0
    assert stored is not None
    assert poly_title[:40] in stored[0]
    assert stored[1].startswith("https://polymarket.com/")
    assert stored[2].endswith("#marketmovelarge")
    samples = await exporter.samples()
    assert samples[key("movers_alert_webhook_requests_total", outcome="stored")] >= 5


def _exprs(rules: Path) -> list[str]:
    return [
        rule["expr"]
        for path in sorted(rules.glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


async def _dashboard_and_rule_queries_have_data(prom_url: str, rule_exprs: list[str]) -> None:
    """Every PromQL expression of the dashboards returns data from this run's Prometheus; every
    rule expression is valid there, and each metric it reads has data (an alert's own result is
    empty while it does not fire)."""
    now = datetime.now(UTC)
    span = TimeRange(now - timedelta(minutes=1), now, interval=timedelta(seconds=1))
    async with httpx.AsyncClient(base_url=prom_url, timeout=10) as client:

        async def query(expr: str) -> list[Any]:
            response = await client.get("/api/v1/query", params={"query": expr})
            body = response.json()
            assert body["status"] == "success", (expr, body)
            result: list[Any] = body["data"]["result"]
            return result

        for board, title, expr in promql_expressions():
            result = await query(expand_promql(expr, span, rate_interval="10s"))
            assert result, f"{board} / {title}: no data for {expr}"
        for rule_expr in rule_exprs:
            await query(rule_expr)
            for name in set(re.findall(r"\b(movers_[a-z_]+)\b", rule_expr)):
                assert await query(name), (rule_expr, name)
