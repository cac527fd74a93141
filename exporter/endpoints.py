"""The exporter's HTTP endpoints: ``/metrics``, ``/healthz``, ``/readyz`` and the alert-history
webhook."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from exporter.alerts import WEBHOOK_PATH, AlertHistory
from exporter.ingest.common import Jobs
from exporter.storage.health import DatabaseFigures

READY_WITHIN = 600.0
"""/readyz wants a successful job run this recent (seconds)."""


def metrics_app(
    registry: CollectorRegistry,
    jobs: Jobs,
    database: DatabaseFigures,
    *,
    venues: bool,
    history: AlertHistory | None = None,
) -> web.Application:
    """``/metrics`` in the format the scraper asks for (OpenMetrics or the text format),
    ``/healthz`` (the process answers), ``/readyz`` (the database answered its last check and,
    with ``venues`` enabled, some job succeeded recently) and, with ``history``, the
    alert-history webhook ``POST /alerts/webhook``."""

    async def metrics(request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        response = web.Response(body=encode(registry), headers={"Content-Type": content_type})
        response.enable_compression()  # gzip when the scraper accepts it (Prometheus does)
        return response

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        recent = jobs.recent(READY_WITHIN)
        ready = database.up and (bool(recent) or not venues)
        body = {"database": database.up, "recent_jobs": recent}
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if history is not None:
        app.router.add_post(WEBHOOK_PATH, history.handle)
    return app
