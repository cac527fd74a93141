"""Alertmanager notifications parsed for the alert history; the webhook token; the info metric's
label lengths."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter.alerts import (
    NotificationError,
    parse_notification,
    parse_time,
)
from exporter.config import load_settings, redacted, validate_settings
from exporter.errors import ConfigError
from exporter.metrics import build_registry
from exporter.model import Mover
from exporter.movers import MoversView
from exporter.service import build_ingest
from exporter.storage.db import create_pool
from exporter.storage.migrate import Mode
from exporter.storage.writer import Writer
from tests.support.notifications import FIRING, resolved


def test_a_notification_parses_into_rows_with_exact_times() -> None:
    (alert,) = parse_notification(orjson.dumps(FIRING))
    starts = datetime(2026, 12, 1, 21, 0, 0, 123456, tzinfo=UTC)
    assert alert.status == "firing"
    assert alert.alertname == "MarketMoveLarge"
    assert alert.time == starts
    assert alert.starts_at == starts
    assert alert.ends_at is None  # a firing alert's endsAt is only a validity guess
    assert alert.labels["market_id"] == "polymarket:0xabc"
    assert alert.annotations["move_pp"] == "+12.0"
    assert alert.receiver == "history"
    (ended,) = parse_notification(orjson.dumps(resolved()))
    assert ended.time == datetime(2026, 12, 1, 21, 9, 30, 500000, tzinfo=UTC)
    assert ended.ends_at == ended.time
    assert parse_time("0001-01-01T00:00:00Z", "endsAt") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.update(version="3"), 'version: expected "4"'),
        (lambda p: p.update(alerts={}), "alerts: expected a list"),
        (lambda p: p["alerts"][0].update(status="pending"), "alerts[0].status"),
        (lambda p: p["alerts"][0]["labels"].pop("alertname"), "alerts[0].labels: no alertname"),
        (lambda p: p["alerts"][0]["labels"].update(n=1), "alerts[0].labels: expected an object"),
        (lambda p: p["alerts"][0].pop("fingerprint"), "alerts[0].fingerprint: missing"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "alerts[0].startsAt: expected"),
        (lambda p: p["alerts"][0].update(startsAt="2026-12-01T21:00:00"), "without a zone"),
    ],
)
def test_a_malformed_notification_is_refused_naming_the_field(change: Any, message: str) -> None:
    payload = copy.deepcopy(FIRING)
    change(payload)
    with pytest.raises(NotificationError, match=message.replace("[", r"\[").replace("(", r"\(")):
        parse_notification(orjson.dumps(payload))


def test_a_resolved_alert_without_its_end_and_a_body_that_is_not_json_are_refused() -> None:
    payload = resolved()
    payload["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    with pytest.raises(NotificationError, match="needs its end"):
        parse_notification(orjson.dumps(payload))
    with pytest.raises(NotificationError, match="not JSON"):
        parse_notification(b'{"version": "4", "alerts": [')


def test_the_webhook_token_comes_from_the_environment_only_and_is_masked(tmp_path: Path) -> None:
    settings = load_settings(environ={"MOVERS_ALERTS_WEBHOOK_TOKEN": "s3cret"})
    assert settings.alerts.webhook_token is not None
    assert settings.alerts.webhook_token.get_secret_value() == "s3cret"
    assert redacted(settings)["alerts"]["webhook_token"] == "***"
    in_yaml = tmp_path / "movers.yaml"
    in_yaml.write_text("alerts:\n  webhook_token: s3cret\n")
    with pytest.raises(ConfigError, match=r"alerts\.webhook_token: is a secret") as caught:
        load_settings(in_yaml, environ={})
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"alerts\.webhook_tokn: unknown key"):
        validate_settings({"alerts": {"webhook_tokn": "x"}})


def test_info_metric_labels_are_cut_to_bounded_lengths() -> None:
    settings = validate_settings({"venues": {"kalshi": {"enabled": False}}})
    pool = create_pool(settings.database)  # never opened
    writer = Writer.from_settings(pool, Mode.PLAIN, settings)
    ingest = build_ingest(settings, writer)
    now = datetime.now(UTC)
    mover = Mover(
        window_label="5m", rank=1, category_rank=1, venue="polymarket", market_id="polymarket:0x1",
        outcome_id="polymarket:1", title="é" * 1000, outcome="o" * 500,
        category="Politics", url="https://polymarket.com/event/" + "x" * 400, price_then=0.3,
        price_now=0.42, move_pp=12.0, score=1.0, volume_24h=1.0, liquidity=None, spread=0.01,
        then_time=now - timedelta(minutes=5), now_time=now, end_time=None, computed_at=now,
    )  # fmt: skip
    ingest.movers.view = MoversView((mover,), (), now)
    registry = build_registry([ingest.movers])
    (sample,) = [s for f in registry.collect() for s in f.samples if s.name == "movers_market_info"]
    assert len(sample.labels["title"]) == 200
    assert sample.labels["title"].endswith("…")
    assert len(sample.labels["outcome"]) == 100
    assert sample.labels["url"] == ""  # too long to be a label: left out
    assert all(len(v.encode()) <= 1024 for v in sample.labels.values())


def test_a_market_of_several_outcomes_is_one_series_a_window() -> None:
    """Its best-ranked outcome's move (two samples with the same labels would be dropped by the
    scrape as duplicates, whichever came second)."""
    settings = validate_settings({"venues": {"kalshi": {"enabled": False}}})
    writer = Writer.from_settings(create_pool(settings.database), Mode.PLAIN, settings)
    ingest = build_ingest(settings, writer)
    now = datetime.now(UTC)
    movers = tuple(
        Mover(
            window_label="5m", rank=rank, category_rank=rank, venue="polymarket",
            market_id="polymarket:0xmulti", outcome_id=f"polymarket:{rank}", title="Who wins?",
            outcome=f"Candidate {rank}", category="Politics", url=None, price_then=0.3,
            price_now=0.3 + move / 100, move_pp=move, score=1.0, volume_24h=1.0, liquidity=None,
            spread=0.01, then_time=now - timedelta(minutes=5), now_time=now, end_time=None,
            computed_at=now,
        )
        for rank, move in ((1, 12.0), (2, -9.0))
    )  # fmt: skip
    ingest.movers.view = MoversView(movers, (), now)
    registry = build_registry([ingest.movers])
    moves = [s.value for f in registry.collect() for s in f.samples
             if s.name == "movers_market_move_ratio"]  # fmt: skip
    assert moves == [0.12]
