"""An Alertmanager notification as the webhook receives it, and the webhook on its own."""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from exporter.alerts import (
    WEBHOOK_PATH,
    AlertHistory,
)
from exporter.storage.database import Database as Store

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


def resolved() -> dict[str, Any]:
    payload = copy.deepcopy(FIRING)
    payload["status"] = "resolved"
    payload["alerts"][0] |= {"status": "resolved", "endsAt": ENDS}
    return payload


def webhook_alone(token: str | None = None) -> tuple[web.Application, AlertHistory]:
    """The webhook on its own, over a pool that is never opened (nothing is stored)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool("", open=False)
    history = AlertHistory(Store(pool), token=token)
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, history.handle)
    return app, history
