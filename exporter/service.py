"""The composition root: configuration -> database, writer, scheduled jobs."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import psycopg
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exporter.config import Settings
from exporter.errors import StorageError
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.maintenance import apply_retention, run_rollups
from exporter.storage.migrate import MigrationReport, Mode

log = structlog.get_logger("exporter")


async def maintain(
    pool: AsyncConnectionPool[Any], settings: Settings, mode: Mode
) -> dict[str, Any]:
    """One pass of exporter-managed rollups and retention (nothing to do on full TimescaleDB,
    whose own policies run them)."""
    if mode is Mode.TIMESCALE:
        return {}
    async with pool.connection() as conn:
        rollups = await run_rollups(conn, settings.storage)
        removed = await apply_retention(conn, settings.storage, mode)
    return {"rollups": {r.level: r.rows for r in rollups}, "retention": removed}


async def maintain_once(settings: Settings, mode: Mode) -> dict[str, Any]:
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        return await maintain(pool, settings, mode)
    finally:
        await pool.close()


async def run_service(settings: Settings, report: MigrationReport, once: bool) -> int:
    """Run the scheduled jobs until SIGTERM/SIGINT (or one pass with ``once``)."""
    if once:
        result = await maintain_once(settings, report.mode)
        log.info("maintenance done", mode=report.mode.value, **result)
        return 0
    pool = create_pool(settings.database)
    await pool.open(wait=False)
    scheduler = AsyncIOScheduler(timezone="UTC")
    stop = asyncio.Event()

    async def maintenance() -> None:
        try:
            result = await maintain(pool, settings, report.mode)
            log.debug("maintenance done", **result)
        except (StorageError, psycopg.Error, PoolTimeout) as exc:
            log.warning("maintenance failed", error=type(exc).__name__)

    if report.mode is not Mode.TIMESCALE:
        scheduler.add_job(
            maintenance,
            "interval",
            seconds=settings.storage.maintenance_every.total_seconds(),
            max_instances=1,
            coalesce=True,
            id="maintenance",
        )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    log.info("exporter running", mode=report.mode.value)
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await pool.close()
    log.info("exporter stopped")
    return 0


def start(settings: Settings, once: bool) -> int:
    report = prepare_schema(settings)
    log.info("schema ready", mode=report.mode.value, applied=report.applied)
    return asyncio.run(run_service(settings, report, once))
