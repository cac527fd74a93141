"""The alert history stored: every notification once, bad input refused with 4xx, never 5xx."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.alerts import (
    WEBHOOK_PATH,
    AlertHistory,
)
from exporter.endpoints import metrics_app
from exporter.metrics import build_registry
from exporter.service import build_ingest
from exporter.storage.database import Database as Store
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.health import DatabaseFigures
from exporter.storage.migrate import Mode
from exporter.storage.writer import Writer
from tests.support.databases import Database
from tests.support.notifications import FIRING, resolved


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
    response = await client.post(WEBHOOK_PATH, data=orjson.dumps(resolved()))
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
