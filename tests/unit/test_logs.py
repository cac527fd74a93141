"""Logs never carry a secret: the configured ones, and credential headers that a library logs
at debug (websockets logs every handshake header), whatever the level."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import httpx
import pytest
import structlog
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from exporter.config import LoggingConfig, secret_values, validate_settings
from exporter.logs import configure_logging
from exporter.venues.kalshi.client import KalshiClient

KEY_ID = "a952bcbe-ec3b-4b5b-b8f9-11dae589608c"
TOKEN = "history-token-7f3a"
PASSWORD = "p@ss/wo:rd+%41"


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Debug logs, every logger's, into a buffer that stands in for stderr."""
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    settings = validate_settings({
        "database": {"url": "postgresql://movers:hunter22@db/movers"},
        "venues": {"kalshi": {"api_key_id": KEY_ID}},
        "logging": {"level": "debug", "format": "json"},
    })  # fmt: skip
    secrets = [*secret_values(settings), TOKEN, PASSWORD]
    configure_logging(LoggingConfig(level="debug", format="json"), secrets)
    try:
        yield stderr
    finally:
        logging.getLogger().handlers = []
        structlog.reset_defaults()


async def test_websockets_handshake_headers_are_masked_at_debug(debug_logs: io.StringIO) -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        headers = {
            "KALSHI-ACCESS-KEY": KEY_ID,
            "KALSHI-ACCESS-SIGNATURE": "c2lnbmF0dXJlLXNlY3JldA==",
            "KALSHI-ACCESS-TIMESTAMP": "1764770000000",
        }
        async with connect(f"ws://127.0.0.1:{port}/", additional_headers=headers) as ws:
            await ws.send("ping")
            await ws.recv()
    err = debug_logs.getvalue()
    assert "KALSHI-ACCESS-KEY" in err  # websockets did log the handshake at debug ...
    assert KEY_ID not in err  # ... and nothing of the credentials reached the log
    assert "c2lnbmF0dXJlLXNlY3JldA" not in err


def test_configured_secrets_are_masked_in_every_logger(debug_logs: io.StringIO) -> None:
    structlog.get_logger("exporter").info("connecting", dsn="postgresql://movers:hunter22@db/m")
    structlog.get_logger("exporter").debug("webhook", headers={"Authorization": f"Bearer {TOKEN}"})
    logging.getLogger("psycopg").warning("password %s rejected", PASSWORD)
    logging.getLogger("some.library").debug("Authorization: Bearer %s", "anything-else-42")
    err = debug_logs.getvalue()
    for secret in ("hunter22", TOKEN, PASSWORD, "anything-else-42"):
        assert secret not in err, secret
    assert err.count("***") >= 4


async def test_retries_are_counted_not_logged_one_by_one(debug_logs: io.StringIO) -> None:
    """A storm of 5xx answers retried with backoff: no line per retry (stamina's own hook is off),
    each retry counted for movers_venue_retries_total."""
    answers = iter([503, 503, 502, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json={"series": []} if status == 200 else {})

    settings = validate_settings({"venues": {"kalshi": {
        "rest_url": "http://kalshi.test/trade-api/v2",
        "retry": {"attempts": 5, "wait_initial": 0.01, "wait_max": 0.02}}}})  # fmt: skip
    client = KalshiClient(settings.venues.kalshi, transport=httpx.MockTransport(handler))
    try:
        await client.series()
    finally:
        await client.aclose()
    assert client.http.events[("series", "retry")] == 3
    assert "retry" not in debug_logs.getvalue().lower()
