"""The alert history: Alertmanager webhook payloads parsed, stored once each, served over HTTP."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from exporter.alerts import (
    WEBHOOK_PATH,
    AlertHistory,
    NotificationError,
    parse_notification,
    parse_time,
)
from exporter.config import load_settings, redacted, validate_settings
from exporter.endpoints import metrics_app
from exporter.errors import ConfigError
from exporter.metrics import build_registry
from exporter.movers import Mover, MoversView
from exporter.service import build_ingest
from exporter.storage.database import Database as Store
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.health import DatabaseFigures
from exporter.storage.migrate import Mode
from exporter.storage.writer import Writer
from tests.conftest import Database

STARTS = "2026-12-01T21:00:00.123456789Z"
ENDS = "2026-12-01T21:09:30.5Z"
FIRING: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}/{}:{alertname="MarketMoveLarge", fingerprint="9c1a40bd2a6c4d3e"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "history",
    "groupLabels": {"alertname": "MarketMoveLarge"},
    "commonLabels": {"alertname": "MarketMoveLarge", "severity": "info"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {
                "alertname": "MarketMoveLarge",
                "area": "markets",
                "severity": "info",
                "venue": "polymarket",
                "market_id": "polymarket:0xabc",
                "window": "5m",
                "category": "Politics",
                "title": "Will the bill pass?",
                "outcome": "Yes",
                "url": "https://polymarket.com/event/bill",
            },
            "annotations": {
                "summary": "Will the bill pass? (Yes) +12.0 pp in 5m",
                "move_pp": "+12.0",
            },
            "startsAt": STARTS,
            "endsAt": "2026-12-01T21:04:00Z",
            "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
            "fingerprint": "9c1a40bd2a6c4d3e",
        }
    ],
}


def _resolved() -> dict[str, Any]:
    payload = copy.deepcopy(FIRING)
    payload["status"] = "resolved"
    payload["alerts"][0] |= {"status": "resolved", "endsAt": ENDS}
    return payload


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
    (resolved,) = parse_notification(orjson.dumps(_resolved()))
    assert resolved.time == datetime(2026, 12, 1, 21, 9, 30, 500000, tzinfo=UTC)
    assert resolved.ends_at == resolved.time
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
    payload = _resolved()
    payload["alerts"][0]["endsAt"] = "0001-01-01T00:00:00Z"
    with pytest.raises(NotificationError, match="needs its end"):
        parse_notification(orjson.dumps(payload))
    with pytest.raises(NotificationError, match="not JSON"):
        parse_notification(b'{"version": "4", "alerts": [')


@pytest.fixture
async def served(db: Database) -> AsyncIterator[tuple[TestClient[Any, Any], AlertHistory]]:
    """The exporter's HTTP app with the alert-history webhook, over a migrated database."""
    settings = db.settings()
    prepare_schema(settings)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    history = AlertHistory(Store(pool))
    writer = Writer.from_settings(pool, Mode.PLAIN, settings)
    ingest = build_ingest(settings, writer)
    registry = build_registry([*ingest.collectors(), history])
    app = metrics_app(registry, ingest.jobs, DatabaseFigures(), venues=True, history=history)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, history
    finally:
        await client.close()
        await ingest.aclose()
        await pool.close()


@pytest.mark.db
async def test_every_notification_is_stored_once_firing_and_resolved(
    db: Database, served: tuple[TestClient[Any, Any], AlertHistory]
) -> None:
    client, history = served
    for _ in range(2):  # a repeat (or a retried delivery) of the same notification
        response = await client.post(WEBHOOK_PATH, data=orjson.dumps(FIRING))
        assert response.status == 200
        assert await response.json() == {"stored": 1}
    response = await client.post(WEBHOOK_PATH, data=orjson.dumps(_resolved()))
    assert response.status == 200
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT status, time, alertname, severity, venue, market_id, category, window_label,"
            " summary, labels ->> 'title', annotations ->> 'move_pp', ends_at, notifications,"
            " receiver FROM alerts ORDER BY time"
        ).fetchall()
    starts = datetime(2026, 12, 1, 21, 0, 0, 123456, tzinfo=UTC)
    ends = datetime(2026, 12, 1, 21, 9, 30, 500000, tzinfo=UTC)
    assert [r[:2] for r in rows] == [("firing", starts), ("resolved", ends)]
    firing = rows[0]
    assert firing[2:11] == ("MarketMoveLarge", "info", "polymarket", "polymarket:0xabc",
                            "Politics", "5m", "Will the bill pass? (Yes) +12.0 pp in 5m",
                            "Will the bill pass?", "+12.0")  # fmt: skip
    assert firing[11] is None
    assert firing[12] == 2
    assert firing[13] == "history"
    assert rows[1][11] == ends
    assert rows[1][12] == 1
    assert history.requests["stored"] == 3
    metrics = await (await client.get("/metrics")).text()
    assert 'movers_alert_webhook_requests_total{outcome="stored"} 3.0' in metrics
    assert 'movers_alert_notifications_total{status="resolved"} 1.0' in metrics


@pytest.mark.db
async def test_a_malformed_notification_gets_400_and_stores_nothing(
    db: Database, served: tuple[TestClient[Any, Any], AlertHistory]
) -> None:
    client, history = served
    payload = copy.deepcopy(FIRING)
    payload["alerts"].append({"status": "firing", "labels": {}, "fingerprint": "x"})
    response = await client.post(WEBHOOK_PATH, data=orjson.dumps(payload))
    assert response.status == 400
    assert "alerts[1].labels: no alertname" in (await response.json())["error"]
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (0,)
    assert history.requests["invalid"] == 1


async def test_an_unreachable_database_answers_503_so_alertmanager_retries() -> None:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:9/none", open=False, timeout=0.5,
        kwargs={"connect_timeout": 1},
    )  # fmt: skip
    await pool.open(wait=False)
    history = AlertHistory(Store(pool))
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, history.handle)
    async with TestClient(TestServer(app)) as client:
        response = await client.post(WEBHOOK_PATH, data=orjson.dumps(FIRING))
        assert response.status == 503
    await pool.close()
    assert history.requests["unavailable"] == 1


def _webhook_alone(token: str | None = None) -> tuple[web.Application, AlertHistory]:
    """The webhook on its own, over a pool that is never opened (nothing is stored)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool("", open=False)
    history = AlertHistory(Store(pool), token=token)
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, history.handle)
    return app, history


async def test_a_configured_token_is_required() -> None:
    app, history = _webhook_alone(token="s3cret")
    async with TestClient(TestServer(app)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            response = await client.post(WEBHOOK_PATH, data=b"{}", headers=headers)
            assert response.status == 401
        # The right token gets past the check (to the body check here).
        response = await client.post(
            WEBHOOK_PATH, data=b"{}", headers={"Authorization": "Bearer s3cret"}
        )
        assert response.status == 400
    assert history.requests["unauthorized"] == 3


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


@pytest.mark.db
async def test_bad_input_gets_4xx_never_5xx_and_a_nul_is_stored_cleaned(
    db: Database, served: tuple[TestClient[Any, Any], AlertHistory]
) -> None:
    """Alertmanager retries a 5xx for ever: only a database that is really down may answer one."""
    client, history = served
    nul = copy.deepcopy(FIRING)
    nul["alerts"][0]["labels"]["title"] = "Will the\x00bill pass?"
    nul["alerts"][0]["annotations"]["summary"] = "\x00"
    nul["receiver"] = "hist\x00ory"
    response = await client.post(WEBHOOK_PATH, data=orjson.dumps(nul))
    assert response.status == 200, await response.text()
    with db.connect() as conn:
        row = conn.execute("SELECT labels ->> 'title', summary, receiver FROM alerts").fetchone()
    assert row == ("Will the\ufffdbill pass?", "\ufffd", "hist\ufffdory")
    for starts in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "10000-01-01T00:00Z"):
        late = copy.deepcopy(FIRING)
        late["alerts"][0]["startsAt"] = starts
        response = await client.post(WEBHOOK_PATH, data=orjson.dumps(late))
        assert response.status == 400, (starts, await response.text())
    assert history.requests["invalid"] == 3


async def test_a_non_ascii_token_is_refused_not_a_crash() -> None:
    app, history = _webhook_alone(token="s3cret")
    async with TestClient(TestServer(app)) as client:
        for given in ("Bearer s3crét", "Bearer ☃", "Bearer \udcff"):
            headers = {"Authorization": given.encode("utf-8", "surrogateescape").decode("latin-1")}
            response = await client.post(WEBHOOK_PATH, data=b"{}", headers=headers)
            assert response.status == 401, given
    assert history.requests["unauthorized"] == 3


async def test_a_client_that_hangs_up_mid_body_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Served as the exporter serves it (an AppRunner, whose handlers run to the end)."""
    app, history = _webhook_alone()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            'Content-Length: 5000\r\n\r\n{"version": "4", '.encode()
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        for _ in range(100):
            if history.requests["invalid"]:
                break
            await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert history.requests["invalid"] == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


EDGES = ["\x00", "a\x00b", "9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00", "4",
         "firing", "resolved", "0001-01-01T00:00:00Z", ""]  # fmt: skip
"""Values that once made the webhook answer 5xx, drawn often."""
BODIES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats()
    | st.text(max_size=30) | st.sampled_from(EDGES),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20,
)  # fmt: skip


@pytest.mark.db
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_no_body_or_header_makes_the_webhook_answer_5xx(
    served: tuple[TestClient[Any, Any], AlertHistory], data: st.DataObject
) -> None:
    client, _history = served
    kind = data.draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes"]))
    if kind == "bytes":
        body = data.draw(st.binary(max_size=200))
    elif kind == "json":
        body = orjson.dumps(data.draw(BODIES), option=orjson.OPT_NON_STR_KEYS)
    else:  # one field of a real notification replaced by anything
        payload = copy.deepcopy(FIRING)
        alert = payload["alerts"][0]
        where = data.draw(st.sampled_from([payload, alert, alert["labels"], alert["annotations"]]))
        key = data.draw(st.sampled_from(sorted(where)) | st.text(max_size=8))
        where[key] = data.draw(st.sampled_from(EDGES) | BODIES)
        body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    # Any header a client can send (the HTTP client itself refuses control characters).
    header = data.draw(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255,
                                       blacklist_characters="\x7f"), max_size=40)
    )  # fmt: skip
    response = await client.post(WEBHOOK_PATH, data=body, headers={"Authorization": header})
    assert response.status < 500, (body, header, await response.text())
