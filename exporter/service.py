"""The composition root: configuration -> database, writer, scheduled jobs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from exporter.categories import Categories, load_categories
from exporter.config import Settings
from exporter.errors import StorageError
from exporter.ingest.common import Jobs, Rejects
from exporter.ingest.kalshi import KalshiIngest
from exporter.ingest.polymarket import PolymarketIngest
from exporter.metrics import DatabaseFigures, build_registry, metrics_app
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.maintenance import apply_retention, run_rollups
from exporter.storage.migrate import MigrationReport, Mode
from exporter.storage.writer import Writer
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.polymarket.client import PolymarketClient

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


@dataclass
class Ingest:
    """The venue jobs, their clients and shared bookkeeping."""

    jobs: Jobs
    rejects: Rejects
    categories: Categories
    writer: Writer
    polymarket: PolymarketIngest | None
    kalshi: KalshiIngest | None
    clients: list[Any]

    def schedule(self, settings: Settings) -> list[tuple[str, Callable[[], Awaitable[Any]], float]]:
        """``(name, job, every seconds)``; discovery first so the price jobs have markets."""
        plan: list[tuple[str, Callable[[], Awaitable[Any]], float]] = []
        pm, config = self.polymarket, settings.venues.polymarket
        if pm is not None:
            plan += [
                ("polymarket_discovery", pm.discover, config.discovery_every.total_seconds()),
                ("polymarket_hot", pm.refresh_hot, config.hot_every.total_seconds()),
                ("polymarket_tail", pm.refresh_tail, config.tail_every.total_seconds()),
                ("polymarket_trades", pm.collect_trades, config.trades_every.total_seconds()),
            ]
        kx, kconfig = self.kalshi, settings.venues.kalshi
        if kx is not None:
            plan += [
                ("kalshi_discovery", kx.discover, kconfig.discovery_every.total_seconds()),
                ("kalshi_hot", kx.refresh_hot, kconfig.hot_every.total_seconds()),
                ("kalshi_prices", kx.refresh_prices, kconfig.prices_every.total_seconds()),
                ("kalshi_trades", kx.collect_trades, kconfig.trades_every.total_seconds()),
            ]
        return plan

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


DATABASE_CHECK_SECONDS = 30


def build_ingest(settings: Settings, writer: Writer) -> Ingest:
    categories = load_categories(settings.categories.file)
    rejects = Rejects()
    clients: list[Any] = []
    polymarket = None
    if settings.venues.polymarket.enabled:
        client = PolymarketClient(settings.venues.polymarket)
        clients.append(client)
        polymarket = PolymarketIngest(
            settings.venues.polymarket, client, writer, categories, rejects
        )
    kalshi = None
    if settings.venues.kalshi.enabled:
        kalshi_client = KalshiClient(settings.venues.kalshi)
        clients.append(kalshi_client)
        kalshi = KalshiIngest(settings.venues.kalshi, kalshi_client, writer, categories, rejects)
    return Ingest(Jobs(), rejects, categories, writer, polymarket, kalshi, clients)


async def run_service(settings: Settings, report: MigrationReport, once: bool) -> int:
    """Run the scheduled jobs until SIGTERM/SIGINT, or each job once with ``once`` (exit 1 when
    one of them failed)."""
    pool = create_pool(settings.database)
    await pool.open(wait=once)
    writer = Writer.from_settings(pool, report.mode, settings)
    ingest = build_ingest(settings, writer)
    try:
        primed = await writer.prime()
        log.info("change filter primed", outcomes=primed)
        if once:
            return await _run_once(settings, report, pool, ingest)
        return await _run_forever(settings, report, pool, ingest)
    finally:
        await ingest.aclose()
        await pool.close()


async def _run_once(
    settings: Settings, report: MigrationReport, pool: AsyncConnectionPool[Any], ingest: Ingest
) -> int:
    ok = True
    for name, job, _ in ingest.schedule(settings):
        ok = await ingest.jobs.run(name, job) and ok
    result = await maintain(pool, settings, report.mode)
    log.info(
        "one pass done",
        mode=report.mode.value,
        jobs={n: dict(s.runs) for n, s in ingest.jobs.states.items()},
        malformed=sum(ingest.rejects.counts.values()),
        **result,
    )
    return 0 if ok else 1


async def _run_forever(
    settings: Settings, report: MigrationReport, pool: AsyncConnectionPool[Any], ingest: Ingest
) -> int:
    scheduler = AsyncIOScheduler(timezone="UTC")
    stop = asyncio.Event()
    database = DatabaseFigures()
    registry = build_registry(ingest, ingest.writer, database)
    runner = web.AppRunner(metrics_app(registry, ingest, database), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics.host, settings.metrics.port)
    await site.start()
    log.info("metrics listening", host=settings.metrics.host, port=settings.metrics.port)
    await ingest.jobs.run("database_check", lambda: database.refresh(pool))
    scheduler.add_job(
        ingest.jobs.run,
        "interval",
        args=("database_check", lambda: database.refresh(pool)),
        seconds=DATABASE_CHECK_SECONDS,
        max_instances=1,
        coalesce=True,
        id="database_check",
    )

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
    now = datetime.now(UTC)
    for index, (name, job, every) in enumerate(ingest.schedule(settings)):
        if name.endswith("_discovery"):
            job = _then(job, lambda: database.refresh(pool))  # market counts change now
        scheduler.add_job(
            ingest.jobs.run,
            "interval",
            args=(name, job),
            seconds=every,
            max_instances=1,
            coalesce=True,
            id=name,
            # Discovery at once; the others a little later, after it has found markets.
            next_run_time=now + timedelta(seconds=0 if index == 0 else min(every, 5.0)),
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
        await runner.cleanup()
    log.info("exporter stopped")
    return 0


def _then(
    job: Callable[[], Awaitable[Any]], after: Callable[[], Awaitable[Any]]
) -> Callable[[], Awaitable[Any]]:
    async def both() -> Any:
        result = await job()
        await after()
        return result

    return both


def start(settings: Settings, once: bool) -> int:
    report = prepare_schema(settings)
    log.info("schema ready", mode=report.mode.value, applied=report.applied)
    return asyncio.run(run_service(settings, report, once))
