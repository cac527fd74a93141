"""The alerting configuration checked by the real tools: promtool (config, rules, rule unit tests),
amtool (config, every route, the templates rendered for a worst-case group within Discord's
limits), and the rules' contract with the exporter's metrics and the README."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alerting import (
    ALERTMANAGER_YML,
    PROMETHEUS_YML,
    REPO,
    RULES,
    alertmanager_config,
    run,
)
from tests.support.running import every_metric

RULE_TESTS = REPO / "alertmanager" / "tests" / "rules.test.yml"
TEMPLATES = str(REPO / "alertmanager" / "templates" / "*.tmpl")


def _rules() -> list[dict[str, Any]]:
    found = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found.extend(group["rules"])
    return found


def _alerts() -> list[dict[str, Any]]:
    return [r for r in _rules() if "alert" in r]


def test_prometheus_config_is_valid_and_loads_every_rule_file(tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["rule_files"] = [str(RULES / "*.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run("promtool", "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    for rule_file in RULES.glob("*.yml"):
        assert str(rule_file) in output
    (movers,) = [job for job in config["scrape_configs"] if job["job_name"] == "movers"]
    assert config["global"]["scrape_interval"] == "15s"
    # A release that floods the TSDB fails its scrape instead: limits above the exporter's bound.
    assert 1000 < movers["sample_limit"] <= 5000
    assert movers["label_limit"] >= 8
    assert movers["label_value_length_limit"] >= 800


def test_rule_files_pass_promtool_check() -> None:
    result = run("promtool", "check", "rules", *map(str, sorted(RULES.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_passes_its_promtool_unit_tests() -> None:
    result = run("promtool", "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert tested == {r["alert"] for r in _alerts()}


def test_every_alert_rule_carries_what_notifications_and_routing_need() -> None:
    readme = (REPO / "README.md").read_text()
    anchors = {_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE)}
    for rule in _alerts():
        assert re.fullmatch(r"[A-Z][A-Za-z]+", rule["alert"])
        assert rule["labels"]["severity"] in {"info", "warning", "critical", "none"}
        assert rule["labels"]["area"] in {"markets", "ops", "meta"}
        for key in ("summary", "description", "runbook_url"):
            assert rule["annotations"].get(key), (rule["alert"], key)
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert anchor in anchors, f"README has no section for {rule['alert']}"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a README heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


async def test_rules_use_only_metrics_the_exporter_exports() -> None:
    """A renamed metric would silently never alert: every name a rule reads is one the exporter
    exports (or a threshold recorded in thresholds.yml, or Prometheus's own `up`)."""
    exported = await every_metric()
    produced = {re.sub(r"_(total|info)$", "", name) for name in exported} | exported
    recorded = {r["record"] for r in _rules() if "record" in r}
    for rule in _alerts():
        for name in re.findall(r"\b(movers[_:][a-z_:]+|up)\b", rule["expr"]):
            if name in recorded or name == "up":
                continue
            base = re.sub(r"_(total|info|bucket|sum|count)$", "", name)
            assert base in produced or name in produced, (rule["alert"], name)


def test_alertmanager_config_is_valid(tmp_path: Path) -> None:
    for path in (
        ALERTMANAGER_YML,
        alertmanager_config(tmp_path, {}, "http://127.0.0.1:9/alerts/webhook"),
    ):
        result = run("amtool", "check-config", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "SUCCESS" in result.stdout


def test_webhook_urls_are_read_from_files_not_written_in_the_repository() -> None:
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    for receiver in config["receivers"]:
        # Market moves send no resolved messages (a calm is not news); ops alerts do.
        resolved = receiver["name"] != "markets"
        for item in receiver.get("discord_configs", []):
            assert "webhook_url" not in item
            assert item["webhook_url_file"].startswith("/run/alertmanager/secrets/")
            assert item["send_resolved"] is resolved
        for item in receiver.get("slack_configs", []):
            assert "api_url" not in item
            assert item["api_url_file"].startswith("/run/alertmanager/secrets/")
            assert item["send_resolved"] is resolved
    assert "hooks.slack.com" not in ALERTMANAGER_YML.read_text()
    assert "discord.com/api/webhooks" not in ALERTMANAGER_YML.read_text()


ROUTES = [
    ("history,markets", "alertname=MarketMoveLarge area=markets severity=info venue=kalshi"
     " category=Politics window=5m"),
    ("history,markets", "alertname=CategorySurge area=markets severity=info category=Sports"
     " window=1h"),
    ("history,markets", "alertname=WhaleTrade area=signals severity=info venue=kalshi"
     " market_id=kalshi:KX-1 signal=whale"),
    ("history,markets", "alertname=MarketResolved area=signals severity=info venue=kalshi"
     " category=Politics signal=resolved"),
    ("history,ops", "alertname=SignalsNotPosted area=ops severity=warning venue=kalshi"),
    ("history,ops", "alertname=IngestStale area=ops severity=warning venue=polymarket"),
    ("history,ops", "alertname=VenueRateLimited area=ops severity=warning venue=kalshi"),
    ("history,ops-critical", "alertname=DatabaseDown area=ops severity=critical"),
    ("history,ops-critical", "alertname=ExporterDown area=ops severity=critical job=movers"),
    ("history,watchdog", "alertname=Watchdog area=meta severity=none"),
    ("history,ops", "alertname=SomethingNew severity=warning"),  # unlabelled: the root's ops
]  # fmt: skip


@pytest.mark.parametrize(("receivers", "labels"), ROUTES)
def test_each_route_sends_alerts_to_its_receivers(receivers: str, labels: str) -> None:
    result = run(
        "amtool", "config", "routes", "test", f"--config.file={ALERTMANAGER_YML}",
        f"--verify.receivers={receivers}", *labels.split(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_every_receiver_is_reached_by_a_route() -> None:
    config = yaml.safe_load(ALERTMANAGER_YML.read_text())
    routed = {name for receivers, _ in ROUTES for name in receivers.split(",")}
    assert routed == {r["name"] for r in config["receivers"]}


def _render(data: dict[str, Any], text: str, folder: Path) -> str:
    path = folder / "data.json"
    path.write_text(json.dumps(data))
    result = run(
        "amtool", "template", "render", f"--template.glob={TEMPLATES}",
        f"--template.text={text}", f"--template.data={path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.removesuffix("\n")


def _group(
    firing: int, resolved: int, labels: dict[str, str], notes: dict[str, str]
) -> dict[str, Any]:
    alerts = [
        {
            "status": status,
            "labels": {**labels, "market_id": f"{labels.get('venue', 'x')}:{i}"},
            "annotations": notes,
            "startsAt": "2026-12-01T21:00:00Z",
            "endsAt": "2026-12-01T21:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{i:016x}",
        }
        for i, status in enumerate(["firing"] * firing + ["resolved"] * resolved)
    ]
    keys = ("alertname", "category", "window", "venue")
    return {
        "receiver": "markets",
        "status": "firing" if firing else "resolved",
        "alerts": alerts,
        "groupLabels": {k: labels[k] for k in keys if k in labels},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
    }


LONG = "Ünïcødé " * 400  # 3,200 characters, several bytes each
WORST_MARKET = {
    "alertname": "MarketMoveLarge" + "X" * 300, "severity": "info", "area": "markets",
    "venue": "polymarket" * 50, "window": "5m" * 200, "category": LONG, "title": LONG,
    "outcome": LONG, "url": "https://polymarket.com/event/" + "a" * 1000,
}  # fmt: skip
WORST_MARKET_NOTES = {
    "summary": LONG, "description": LONG * 3, "move_pp": "+" + "9" * 500,
    "price_then": "1" * 500, "price_now": "2" * 500, "runbook_url": "https://x/" + "y" * 900,
}  # fmt: skip
WORST_SIGNAL = {**WORST_MARKET, "alertname": "WhaleTrade" + "W" * 300, "signal": "whale" * 90}
WORST_OPS = {"alertname": "IngestStale" + "Y" * 300, "severity": "critical", "area": "ops",
             "venue": LONG}  # fmt: skip
WORST_OPS_NOTES = {"summary": LONG, "description": LONG * 3, "runbook_url": "https://x/y"}


@pytest.mark.parametrize(
    ("labels", "notes"),
    [(WORST_MARKET, WORST_MARKET_NOTES), (WORST_SIGNAL, WORST_OPS_NOTES),
     (WORST_OPS, WORST_OPS_NOTES)],
)  # fmt: skip
@pytest.mark.parametrize(("firing", "resolved"), [(50, 0), (0, 50), (25, 25), (50, 50), (1, 0)])
def test_notifications_stay_within_discord_limits_for_a_worst_case_group(
    tmp_path: Path,
    labels: dict[str, str],
    notes: dict[str, str],
    firing: int,
    resolved: int,
) -> None:
    data = _group(firing, resolved, labels, notes)
    title = _render(data, '{{ template "movers.title" . }}', tmp_path)
    message = _render(data, '{{ template "movers.discord.message" . }}', tmp_path)
    content = _render(data, '{{ template "movers.discord.content" . }}', tmp_path)
    slack = _render(data, '{{ template "movers.slack.text" . }}', tmp_path)
    assert 0 < len(title) <= 256
    assert 0 < len(message) <= 4096
    assert 0 < len(content) <= 2000 - len("@here ")
    assert 0 < len(slack) <= 4096
    if firing > 5:
        assert f"{firing} firing in all" in message
    if resolved > 3:
        assert f"{resolved} resolved in all" in message


def test_a_market_notification_reads_well_in_discord_and_slack(tmp_path: Path) -> None:
    labels = {"alertname": "MarketMoveLarge", "severity": "info", "area": "markets",
              "venue": "polymarket", "window": "5m", "category": "Politics",
              "title": "Will the bill pass?", "outcome": "Yes",
              "url": "https://polymarket.com/event/bill"}  # fmt: skip
    up = {"summary": "Will the bill pass? (Yes) +12.0 pp in 5m", "move_pp": "+12.0",
          "price_then": "31.0", "price_now": "43.0"}  # fmt: skip
    data = _group(2, 0, labels, up)
    data["alerts"][1]["labels"] = {**labels, "title": "Rain?", "url": "not a link"}
    data["alerts"][1]["annotations"] = {**up, "move_pp": "-9.0"}
    title = _render(data, '{{ template "movers.title" . }}', tmp_path)
    message = _render(data, '{{ template "movers.discord.message" . }}', tmp_path)
    slack = _render(data, '{{ template "movers.slack.text" . }}', tmp_path)
    assert title == "FIRING 2 · MarketMoveLarge · Politics · 5m · polymarket"
    assert message.splitlines() == [
        "🔺 **+12.0 pp** in 5m · 31.0¢ → 43.0¢ · "
        "[Will the bill pass?](https://polymarket.com/event/bill) — Yes · polymarket",
        "🔻 **-9.0 pp** in 5m · 31.0¢ → 43.0¢ · **Rain?** — Yes · polymarket",
    ]
    assert slack.splitlines()[0] == (
        ":small_red_triangle: *+12.0 pp* in 5m · 31.0¢ → 43.0¢ · "
        "<https://polymarket.com/event/bill|Will the bill pass?> — Yes · polymarket"
    )
    content = _render(data, '{{ template "movers.discord.content" . }}', tmp_path)
    assert content == "Will the bill pass? (Yes) +12.0 pp in 5m (+2 in all)"
    resolved = _group(0, 1, labels, up)
    assert _render(resolved, '{{ template "movers.discord.message" . }}', tmp_path) == (
        "✅ resolved: Will the bill pass? (Yes) +12.0 pp in 5m"
    )
    assert _render(resolved, '{{ template "movers.slack.color" . }}', tmp_path) == "good"


def test_a_signal_reads_well_in_discord_and_slack(tmp_path: Path) -> None:
    """A whale trade as the exporter posts it (exporter/signals.py builds these)."""
    labels = {"alertname": "WhaleTrade", "severity": "info", "area": "signals",
              "signal": "whale", "venue": "polymarket", "market_id": "polymarket:0xbill",
              "title": "Will the bill pass?", "outcome": "Yes", "category": "Politics",
              "url": "https://polymarket.com/event/bill", "trade_id": "0xt"}  # fmt: skip
    notes = {"summary": "0x5a1e0000… BUY $45,000 of Yes @ 75.0¢ · Will the bill pass?",
             "description": "60,000 @ 75.0¢ = $45,000 on polymarket. "
                            "https://polymarket.com/event/bill"}  # fmt: skip
    data = _group(1, 0, labels, notes)
    title = _render(data, '{{ template "movers.title" . }}', tmp_path)
    message = _render(data, '{{ template "movers.discord.message" . }}', tmp_path)
    slack = _render(data, '{{ template "movers.slack.text" . }}', tmp_path)
    assert title.startswith("FIRING 1 · WhaleTrade")
    assert message.splitlines() == [
        "🐋 **0x5a1e0000… BUY $45,000 of Yes @ 75.0¢ · Will the bill pass?**",
        "60,000 @ 75.0¢ = $45,000 on polymarket. https://polymarket.com/event/bill",
    ]
    assert slack.splitlines()[0] == (
        ":whale: *0x5a1e0000… BUY $45,000 of Yes @ 75.0¢ · Will the bill pass?*"
    )
