"""The alert-history webhook over HTTP, without a database: tokens, 503s, clients that hang up."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from psycopg_pool import AsyncConnectionPool

from exporter.alerts import (
    WEBHOOK_PATH,
    AlertHistory,
)
from exporter.storage.database import Database as Store
from tests.support.notifications import FIRING, webhook_alone


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


async def test_a_configured_token_is_required() -> None:
    app, history = webhook_alone(token="s3cret")
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


async def test_a_non_ascii_token_is_refused_not_a_crash() -> None:
    app, history = webhook_alone(token="s3cret")
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
    app, history = webhook_alone()
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
