"""Alert history: Alertmanager's webhook notifications parsed and stored in the ``alerts`` table.

Alertmanager posts a group of alerts (webhook payload version 4) to ``POST /alerts/webhook``.
Each alert becomes one row per ``(fingerprint, starts_at, status)``: the same notification sent
again (a repeat, or a retry after a failed delivery) only bumps ``last_notified`` and
``notifications``, so storing is idempotent. When the database is unreachable the endpoint answers
503 and Alertmanager retries, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import hmac
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import structlog
from aiohttp import ClientPayloadError, web
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.errors import StorageRejected, StorageUnavailable
from exporter.model import StoredAlert
from exporter.storage.alerts import store_alerts
from exporter.storage.database import Database

log = structlog.get_logger("exporter.alerts")

WEBHOOK_PATH = "/alerts/webhook"
_STATUSES = ("firing", "resolved")
_FRACTION = re.compile(r"(\.\d{6})\d+")
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class NotificationError(ValueError):
    """A webhook body that is not an Alertmanager notification; the message says why."""


def parse_time(value: object, what: str) -> datetime | None:
    """Alertmanager's RFC 3339 times (nanoseconds, ``Z``); Go's zero time means "not set"."""
    if value in (None, "", _GO_ZERO_TIME):
        return None
    if not isinstance(value, str):
        raise NotificationError(f"{what}: expected an RFC 3339 time, got {value!r}")
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        raise NotificationError(f"{what}: expected an RFC 3339 time, got {value!r:.60}") from None
    if moment.tzinfo is None:
        raise NotificationError(f"{what}: time without a zone: {value!r:.60}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is past the last UTC time there is
        raise NotificationError(f"{what}: time out of range: {value!r:.60}") from None


def _clean(text: str) -> str:
    """PostgreSQL stores no NUL character (text nor jsonb): one becomes U+FFFD, the rest kept."""
    return text.replace("\x00", "\ufffd")


def _strings(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise NotificationError(f"{what}: expected an object of strings")
    return {_clean(k): _clean(v) for k, v in value.items()}


def parse_notification(body: bytes) -> list[StoredAlert]:
    """The alerts of one webhook notification (payload version 4).

    A trimmed real payload::

        {"version": "4", "status": "firing", "receiver": "history",
         "groupLabels": {...}, "commonLabels": {...}, "externalURL": "http://alertmanager:9093",
         "alerts": [{"status": "firing", "labels": {"alertname": "MarketMoveLarge", ...},
                     "annotations": {"summary": "...", ...},
                     "startsAt": "2026-12-01T21:00:00.123456789Z",
                     "endsAt": "0001-01-01T00:00:00Z",
                     "generatorURL": "http://prometheus:9090/graph?...",
                     "fingerprint": "9c1a40bd2a6c4d3e"}]}
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotificationError(f"body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise NotificationError("body: expected a JSON object")
    if payload.get("version") != "4":
        raise NotificationError(f'version: expected "4", got {payload.get("version")!r}')
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise NotificationError("alerts: expected a list")
    receiver = _clean(payload["receiver"]) if isinstance(payload.get("receiver"), str) else None
    parsed: list[StoredAlert] = []
    for index, alert in enumerate(alerts):
        where = f"alerts[{index}]"
        if not isinstance(alert, dict):
            raise NotificationError(f"{where}: expected an object")
        status = alert.get("status")
        if status not in _STATUSES:
            raise NotificationError(f"{where}.status: expected firing or resolved, got {status!r}")
        labels = _strings(alert.get("labels"), f"{where}.labels")
        annotations = _strings(alert.get("annotations", {}), f"{where}.annotations")
        if not labels.get("alertname"):
            raise NotificationError(f"{where}.labels: no alertname")
        fingerprint = alert.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise NotificationError(f"{where}.fingerprint: missing")
        starts_at = parse_time(alert.get("startsAt"), f"{where}.startsAt")
        if starts_at is None:
            raise NotificationError(f"{where}.startsAt: missing")
        ends_at = parse_time(alert.get("endsAt"), f"{where}.endsAt")
        if status == "resolved" and ends_at is None:
            raise NotificationError(f"{where}.endsAt: a resolved alert needs its end")
        generator = alert.get("generatorURL")
        parsed.append(
            StoredAlert(
                time=ends_at if status == "resolved" and ends_at is not None else starts_at,
                status=str(status),
                alertname=labels["alertname"],
                labels=labels,
                annotations=annotations,
                fingerprint=_clean(fingerprint),
                starts_at=starts_at,
                # A firing alert's endsAt is only Prometheus's guess of how long it stays valid.
                ends_at=ends_at if status == "resolved" else None,
                generator_url=_clean(generator)
                if isinstance(generator, str) and generator
                else None,
                receiver=receiver,
            )
        )
    return parsed


@dataclass(eq=False)  # the registry keys collectors by identity
class AlertHistory(Collector):
    """The webhook endpoint's state: where to store, the optional token, and its counts."""

    database: Database
    token: str | None = None
    requests: Counter[str] = field(default_factory=Counter)
    """Webhook requests by outcome: stored, invalid, unauthorized, unavailable."""
    notifications: Counter[str] = field(default_factory=Counter)
    """Alerts received by status (firing, resolved)."""

    async def handle(self, request: web.Request) -> web.Response:
        if self.token is not None and not _authorized(request, self.token):
            self.requests["unauthorized"] += 1
            return web.json_response({"error": "missing or wrong bearer token"}, status=401)
        try:
            body = await request.read()
        except (ConnectionError, asyncio.IncompleteReadError, ClientPayloadError):
            # The client hung up mid-body: nobody is left to answer, nothing to store.
            self.requests["invalid"] += 1
            return web.json_response({"error": "incomplete body"}, status=400)
        try:
            alerts = parse_notification(body)
        except NotificationError as exc:
            self.requests["invalid"] += 1
            if self.requests["invalid"] == 1:
                log.warning("alert notification refused", error=str(exc))
            return web.json_response({"error": str(exc)}, status=400)
        try:
            await store_alerts(self.database, alerts, datetime.now(UTC))
        except StorageRejected as exc:
            # A value the database refuses is the notification's fault: retrying cannot help.
            self.requests["invalid"] += 1
            return web.json_response({"error": str(exc)}, status=400)
        except StorageUnavailable as exc:
            self.requests["unavailable"] += 1
            log.warning("alert notification not stored", error=str(exc))
            # Alertmanager retries a 5xx, so the notification is stored once the database is back.
            return web.json_response({"error": "database unavailable"}, status=503)
        self.requests["stored"] += 1
        for alert in alerts:
            self.notifications[alert.status] += 1
        return web.json_response({"stored": len(alerts)})

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "movers_alert_webhook_requests",
            "Alertmanager notifications posted to the alert-history webhook, by outcome: stored, "
            "invalid, unauthorized, unavailable (database down: Alertmanager retries).",
            labels=["outcome"],
        )
        for outcome, count in sorted(self.requests.items()):
            requests.add_metric([outcome], count)
        alerts = CounterMetricFamily(
            "movers_alert_notifications",
            "Alerts stored in the alert history, by status (firing, resolved).",
            labels=["status"],
        )
        for status, count in sorted(self.notifications.items()):
            alerts.add_metric([status], count)
        yield from (requests, alerts)


def _authorized(request: web.Request, token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    # Compared as bytes: compare_digest refuses non-ASCII str (a 500 for a garbled header).
    expected = token.encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), expected
    )
