"""The composition root: configuration -> database, writer, scheduled jobs."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from exporter.alerts import AlertHistory
from exporter.categories import Categories, load_categories
from exporter.config import Settings
from exporter.config.pairs import load_pairs
from exporter.endpoints import metrics_app
from exporter.errors import StorageError
from exporter.ingest.backfill import Backfill, BackfillCollector, plan_of
from exporter.ingest.common import Jobs, Rejects, VenueCollector
from exporter.ingest.history_sources import KalshiHistory, PolymarketHistory
from exporter.ingest.hot import HotSet, WatchCollector, in_hot_sets, whale_limits
from exporter.ingest.kalshi import KalshiIngest
from exporter.ingest.kalshi_stream import KalshiStreamer
from exporter.ingest.polymarket import PolymarketIngest
from exporter.ingest.polymarket_stream import PolymarketStreamer
from exporter.ingest.polymarket_trades_stream import PolymarketTradesStreamer
from exporter.ingest.streams import StreamCollector
from exporter.leadership import Leadership
from exporter.metrics import build_registry
from exporter.model import Venue, owner
from exporter.movers import MoversJob, MoversRefresher
from exporter.pairs import PairsJob
from exporter.signals import Signals
from exporter.storage.database import Database
from exporter.storage.db import connect_async, create_pool, prepare_schema
from exporter.storage.health import DatabaseFigures
from exporter.storage.history import HistoryStore
from exporter.storage.lease import FencedDatabase, Lease
from exporter.storage.maintenance import apply_retention, run_rollups
from exporter.storage.migrate import MigrationReport, Mode
from exporter.storage.signals import SignalStore
from exporter.storage.turns import Turns
from exporter.storage.writer import Writer, WriterCollector
from exporter.tuning import TuneJob, alerting_files
from exporter.venues.http import HttpCollector
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.polymarket.client import PolymarketClient

log = structlog.get_logger("exporter")


async def maintain(
    pool: AsyncConnectionPool[Any], settings: Settings, mode: Mode, turns: Turns | None = None
) -> dict[str, Any]:
    """One pass of exporter-managed rollups and retention (nothing to do on full TimescaleDB,
    whose own policies run them); the rollups' steps go after the movers refresh (``turns``)."""
    if mode is Mode.TIMESCALE:
        return {}
    async with Database(pool).connection() as conn:
        rollups = await run_rollups(conn, settings.storage, turns=turns)
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
    clients: list[PolymarketClient | KalshiClient]
    movers: MoversJob
    turns: Turns = field(default_factory=Turns)
    """The database's turns in this process: the movers refresh first, the rollups' and the
    aggregates' steps in the gaps."""
    backfills: list[tuple[Backfill, HotSet, int]] = field(default_factory=list)
    """Each venue's history backfill, the hot set it follows and how many of its outcomes it
    fills at the hot resolution."""
    polymarket_stream: PolymarketStreamer | None = None
    kalshi_stream: KalshiStreamer | None = None
    trades_stream: PolymarketTradesStreamer | None = None
    signals: Signals | None = None
    watches: WatchCollector | None = None
    tune: TuneJob | None = None
    pairs: PairsJob | None = None
    leadership: Leadership | None = None

    def streams(self) -> list[PolymarketStreamer | KalshiStreamer]:
        """The price streams."""
        return [s for s in (self.polymarket_stream, self.kalshi_stream) if s is not None]

    def background(
        self,
    ) -> list[PolymarketStreamer | KalshiStreamer | PolymarketTradesStreamer | Signals]:
        """Every stream that runs beside the scheduled jobs, and the signals' poster."""
        trades = [self.trades_stream] if self.trades_stream is not None else []
        signals = [self.signals] if self.signals is not None else []
        return [*self.streams(), *trades, *signals]

    def collectors(self) -> list[Collector]:
        """One collector per component, for the registry."""
        venues = [v for v in (self.polymarket, self.kalshi) if v is not None]
        found: list[Collector] = [
            self.jobs,
            self.rejects,
            self.categories,
            HttpCollector([client.http for client in self.clients]),
            VenueCollector(venues),
            WriterCollector(self.writer),
            self.movers,
            StreamCollector(self.streams()),
        ]
        if self.trades_stream is not None:
            found.append(self.trades_stream)
        if self.backfills:
            found.append(BackfillCollector([b for b, _, _ in self.backfills]))
        if self.signals is not None:
            found.append(self.signals)
        if self.watches is not None:
            found.append(self.watches)
        if self.tune is not None:
            found.append(self.tune)
        if self.pairs is not None:
            found.append(self.pairs)
        if self.leadership is not None:
            found.append(self.leadership)
        return found

    def backfill_schedule(
        self, settings: Settings
    ) -> list[tuple[str, Callable[[], Awaitable[Any]], float]]:
        """``(name, job, every seconds)`` of each venue's backfill pass (not in ``--once``: a
        first backfill takes minutes)."""
        every = settings.backfill.every.total_seconds()
        return [
            (
                f"{backfill.venue.value}_backfill",
                _backfill_pass(backfill, hot, limit, settings),
                every,
            )
            for backfill, hot, limit in self.backfills
        ]

    def schedule(self, settings: Settings) -> list[tuple[str, Callable[[], Awaitable[Any]], float]]:
        """``(name, job, every seconds)``; discovery first so the price jobs have markets."""
        plan: list[tuple[str, Callable[[], Awaitable[Any]], float]] = []
        pm, config = self.polymarket, settings.venues.polymarket
        if pm is not None:
            plan.append(
                ("polymarket_discovery", pm.discover, config.discovery_every.total_seconds())
            )
            if pm.shard[1] > 1:  # the leader lists the venue, every shard reads it back
                plan.append(
                    ("polymarket_listing", pm.refresh_listing, config.tail_every.total_seconds())
                )
            plan += [
                ("polymarket_hot", pm.refresh_hot, config.hot_every.total_seconds()),
                ("polymarket_tail", pm.refresh_tail, config.tail_every.total_seconds()),
                ("polymarket_trades", pm.collect_trades, config.trades_every.total_seconds()),
            ]
        kx, kconfig = self.kalshi, settings.venues.kalshi
        if kx is not None:
            plan += [
                ("kalshi_discovery", kx.discover, kconfig.discovery_every.total_seconds()),
            ]
            if kx.shard[1] > 1:  # the leader lists the venue, every shard reads it back
                plan.append(
                    ("kalshi_listing", kx.refresh_listing, kconfig.prices_every.total_seconds())
                )
            plan += [
                ("kalshi_hot", kx.refresh_hot, kconfig.hot_every.total_seconds()),
                ("kalshi_prices", kx.refresh_prices, kconfig.prices_every.total_seconds()),
                ("kalshi_trades", kx.collect_trades, kconfig.trades_every.total_seconds()),
            ]
        if self.pairs is not None:
            plan.append(("pairs", self.pairs.run, settings.pairs.every.total_seconds()))
        return plan

    def tune_schedule(
        self, settings: Settings
    ) -> list[tuple[str, Callable[[], Awaitable[Any]], float]]:
        """The alert replay for the Alerts dashboard (not in ``--once``: a week of history)."""
        every = settings.tune.every
        if self.tune is None or every is None:
            return []
        return [("alert_tuning", self.tune.run, every.total_seconds())]

    def signals_schedule(
        self, settings: Settings
    ) -> list[tuple[str, Callable[[], Awaitable[Any]], float]]:
        """The signal detectors' jobs (not in ``--once``: their events are posted by a background
        task, and taking the listing queue without it would drop them)."""
        if self.signals is None:
            return []
        plan: list[tuple[str, Callable[[], Awaitable[Any]], float]] = [
            ("signals_markets", self.signals.market_events, settings.signals.every.total_seconds())
        ]
        if settings.signals.volume.enabled:
            every = settings.signals.volume.every.total_seconds()
            plan.append(("signals_volume", self.signals.volume_spikes, every))
        return plan

    async def aclose(self) -> None:
        if self.leadership is not None:
            await self.leadership.lease.release()
        for client in self.clients:
            await client.aclose()
        if self.signals is not None and self.signals.client is not None:
            await self.signals.client.aclose()


DATABASE_CHECK_SECONDS = 30
FIRST_RUN = {"refresh": 20.0, "backfill": 15.0, "tuning": 60.0, "pairs": 15.0}
"""Seconds after start of a job's first run, by the name's end (others: 5 s): the movers refresh
once some prices are in, the backfill once outcomes have their first live row."""


def build_ingest(settings: Settings, writer: Writer) -> Ingest:
    categories = load_categories(settings.categories.file)
    # The pairs file: a typo fails at start, naming the key; its markets are always hot.
    pairs = load_pairs(settings.pairs.file)
    rejects = Rejects()
    clients: list[PolymarketClient | KalshiClient] = []
    shard, shards = settings.cluster.shard_index, settings.cluster.shard.count
    polymarket = None
    if settings.venues.polymarket.enabled:
        client = PolymarketClient(settings.venues.polymarket)
        clients.append(client)
        polymarket = PolymarketIngest(
            settings.venues.polymarket, client, writer, categories, rejects,
            owner(Venue.POLYMARKET, shard, shards), frozenset(p.polymarket for p in pairs),
            (shard, shards),
        )  # fmt: skip
        if settings.venues.polymarket.stream.enabled:
            streamer = PolymarketStreamer(
                settings.venues.polymarket, polymarket.hot, client, writer, rejects
            )
    kalshi = None
    kalshi_streamer: KalshiStreamer | None = None
    if settings.venues.kalshi.enabled:
        kalshi_client = KalshiClient(settings.venues.kalshi)
        clients.append(kalshi_client)
        kalshi = KalshiIngest(
            settings.venues.kalshi, kalshi_client, writer, categories, rejects,
            owner(Venue.KALSHI, shard, shards), frozenset(p.kalshi for p in pairs),
            (shard, shards),
        )  # fmt: skip
        if settings.venues.kalshi.stream.enabled and kalshi_client.signer is not None:
            kalshi_streamer = KalshiStreamer(
                settings.venues.kalshi.stream, settings.venues.kalshi.ws_url, kalshi.hot,
                kalshi_client.signer, kalshi.refresh_tickers, writer, rejects,
            )  # fmt: skip
    # The jobs that work on the whole database run on one collector at a time: their writes
    # are fenced by the lease (a collector that lost it cannot write).
    lease = Lease(settings.database, settings.cluster.collector)
    fenced = FencedDatabase(writer.pool, lease)
    turns = Turns()
    movers = MoversJob(
        MoversRefresher(
            fenced,
            settings.movers,
            settings.storage.retention.snapshots,
            settings.database.write_concurrency,
            turns=turns,
        )
    )
    # Rows stored after their time (a slow page, an outage) change prices the refresh may
    # already have moved past: it reads again from the oldest.
    writer.stored_listeners.append(movers.refresher.rows_stored)
    ingest = Ingest(Jobs(), rejects, categories, writer, polymarket, kalshi, clients, movers, turns)
    ingest.leadership = Leadership(lease, shard, shards)
    if polymarket is not None and settings.venues.polymarket.stream.enabled:
        ingest.polymarket_stream = streamer
    if polymarket is not None and settings.venues.polymarket.trades_stream.enabled:
        ingest.trades_stream = PolymarketTradesStreamer(
            settings.venues.polymarket, polymarket.hot, writer, rejects
        )
    ingest.kalshi_stream = kalshi_streamer
    url = settings.signals.alertmanager_url
    ingest.signals = Signals(
        settings.signals,
        SignalStore(Database(writer.pool)),
        httpx.AsyncClient(timeout=10.0) if url is not None else None,
    )
    writer.trade_listeners.append(ingest.signals.trades)
    writer.snapshot_listeners.append(ingest.signals.snapshots)
    hot_sets = {v.hot.venue.value: v.hot for v in (polymarket, kalshi) if v is not None}
    ingest.signals.watched = in_hot_sets(hot_sets)
    ingest.signals.whale_for = whale_limits(hot_sets)
    ingest.watches = WatchCollector(list(hot_sets.values()))
    movers.refresher.watched = lambda: [
        f"{venue}:{market}" for venue, hot in hot_sets.items() for market in hot.watches
    ]
    # Without a file too: its first run empties the table of pairs a removed file left.
    ingest.pairs = PairsJob(fenced, settings, pairs)
    ingest.leadership.on_follow += [movers.forget, ingest.pairs.forget]
    if kalshi is not None:
        ingest.leadership.on_follow.append(kalshi.forget_trade_mark)
    if settings.tune.every is not None:
        ingest.tune = TuneJob(fenced, settings, alerting_files(settings.tune))
    if settings.backfill.enabled:
        store = HistoryStore(Database(writer.pool), writer.mode, turns)
        if polymarket is not None:
            source = PolymarketHistory(polymarket.client, rejects)
            size = settings.venues.polymarket.stream.size
            backfill = Backfill.from_settings(source, store, settings)
            ingest.backfills.append((backfill, polymarket.hot, size))
        if kalshi is not None:
            ksource = KalshiHistory(kalshi.client, rejects)
            ksize = settings.venues.kalshi.stream.size
            kbackfill = Backfill.from_settings(ksource, store, settings)
            ingest.backfills.append((kbackfill, kalshi.hot, ksize))
    return ingest


def _backfill_pass(
    backfill: Backfill, hot: HotSet, limit: int, settings: Settings
) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def run() -> dict[str, Any]:
        """Fill the outcomes that have a live row and lack their history: on first start every
        one, later those that joined the hot set (or the venue listed since)."""
        if not hot.known:
            return {"skipped": "no markets discovered yet"}
        tally = await backfill.run(plan_of(hot, settings.backfill, limit), live_only=True)
        return {
            "queued": sum(tally.queued.values()),
            "done": sum(tally.done.values()),
            "rows": tally.rows,
            "requests": sum(tally.requests.values()),
        }

    return run


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
    """One pass of every job, one movers refresh, flush. Exit 1 when no enabled venue could be
    read at all, or rows could not be stored."""
    readable: dict[str, bool] = {}
    leadership = ingest.leadership
    assert leadership is not None
    await ingest.jobs.run("lease", leadership.keep)
    for name, job, _ in ingest.schedule(settings):
        ok = await ingest.jobs.run(name, leadership.gate(name, job))
        venue = name.split("_", 1)[0]
        readable[venue] = readable.get(venue, False) or ok
    await ingest.jobs.run("movers_refresh", leadership.gate("movers_refresh", ingest.movers.run))
    result = (
        await maintain(pool, settings, report.mode)  # after the refresh: no turns to take
        if leadership.lease.leading
        else {"maintenance": "another collector leads"}
    )
    stored = await _flush(ingest.writer, settings, within=SHUTDOWN_SECONDS)
    log.info(
        "one pass done",
        mode=report.mode.value,
        jobs={n: dict(s.runs) for n, s in ingest.jobs.states.items()},
        malformed=sum(ingest.rejects.counts.values()),
        **result,
    )
    if readable and not any(readable.values()):
        log.error("no enabled venue could be read", venues=sorted(readable))
        return 1
    return 0 if stored else 1


SHUTDOWN_SECONDS = 10.0
"""Everything stops within this after SIGTERM/SIGINT: running jobs, then the held rows."""


async def _flush(writer: Writer, settings: Settings, within: float) -> bool:
    """Write the rows held through an outage, over a fresh connection, trying again until
    ``within`` seconds have passed; False (logged) when some are still held."""
    if not len(writer.backlog):
        return True
    written = 0
    try:
        async with asyncio.timeout(within):
            while True:
                try:
                    written += await writer.flush_through(lambda: connect_async(settings.database))
                    break
                except StorageError:
                    await asyncio.sleep(0.5)
    except TimeoutError:
        log.error("held rows not stored", rows=len(writer.backlog))
        return False
    log.info("held rows stored", rows=written)
    return True


async def _run_forever(
    settings: Settings, report: MigrationReport, pool: AsyncConnectionPool[Any], ingest: Ingest
) -> int:
    scheduler = AsyncIOScheduler(timezone="UTC")
    stop = asyncio.Event()
    database = DatabaseFigures()
    token = settings.alerts.webhook_token
    history = AlertHistory(Database(pool), token.get_secret_value() if token is not None else None)
    registry = build_registry([*ingest.collectors(), database, history])
    app = metrics_app(registry, ingest.jobs, database, venues=bool(ingest.clients), history=history)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.metrics.host, settings.metrics.port)
    await site.start()
    log.info("metrics listening", host=settings.metrics.host, port=settings.metrics.port)

    async def check_database() -> dict[str, int]:
        """Market counts for the metrics; and rows held through an outage are written as soon
        as the database answers, even when no job is writing."""
        figures = await database.refresh(pool)
        if len(ingest.writer.backlog):
            figures["held_rows_stored"] = await ingest.writer.flush()
        return figures

    await ingest.jobs.run("database_check", check_database)
    leadership = ingest.leadership
    assert leadership is not None
    await ingest.jobs.run("lease", leadership.keep)
    scheduler.add_job(
        ingest.jobs.run,
        "interval",
        args=("lease", leadership.keep),
        seconds=settings.cluster.lease_every.total_seconds(),
        max_instances=1,
        coalesce=True,
        id="lease",
    )
    scheduler.add_job(
        ingest.jobs.run,
        "interval",
        args=("database_check", check_database),
        seconds=DATABASE_CHECK_SECONDS,
        max_instances=1,
        coalesce=True,
        id="database_check",
    )

    async def maintenance() -> dict[str, Any]:
        return await maintain(pool, settings, report.mode, ingest.turns)

    if report.mode is not Mode.TIMESCALE:
        # A job like the others: counted, and logged once when it starts failing and recovers.
        scheduler.add_job(
            ingest.jobs.run,
            "interval",
            args=("maintenance", leadership.gate("maintenance", maintenance)),
            seconds=settings.storage.maintenance_every.total_seconds(),
            max_instances=1,
            coalesce=True,
            id="maintenance",
        )
    now = datetime.now(UTC)
    plan = ingest.schedule(settings)
    plan.append(("movers_refresh", ingest.movers.run, settings.movers.every.total_seconds()))
    plan += ingest.signals_schedule(settings)
    plan += ingest.backfill_schedule(settings)
    plan += ingest.tune_schedule(settings)
    running: dict[asyncio.Task[Any], str] = {}
    """Jobs in flight, by their task: they finish (within a grace) before the exporter stops."""

    async def tracked(name: str, job: Callable[[], Awaitable[Any]]) -> bool:
        task = asyncio.current_task()
        assert task is not None
        running[task] = name
        try:
            return await ingest.jobs.run(name, job)
        finally:
            running.pop(task, None)

    for index, (name, job, every) in enumerate(plan):
        job = leadership.gate(name, job)
        if name.endswith("_discovery"):
            job = _then(job, lambda: database.refresh(pool))  # market counts change now
        # Discovery at once; the others a little later, after it has found markets; the
        # movers refresh once some prices are in.
        first = 0.0 if index == 0 else min(every, FIRST_RUN.get(name.split("_", 1)[-1], 5.0))
        scheduler.add_job(
            tracked,
            "interval",
            args=(name, job),
            seconds=every,
            max_instances=1,
            coalesce=True,
            id=name,
            next_run_time=now + timedelta(seconds=first),
        )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    streaming = [asyncio.create_task(stream.run()) for stream in ingest.background()]
    log.info("exporter running", mode=report.mode.value, streams=len(streaming))
    try:
        await stop.wait()
    finally:
        deadline = asyncio.get_running_loop().time() + SHUTDOWN_SECONDS
        # Nothing new starts; the jobs in flight go on (APScheduler's shutdown would cancel them
        # at once, dropping a response that was about to arrive).
        scheduler.pause()
        log.info("stopping", running=sorted(running.values()))
        if streaming:
            for task in streaming:
                task.cancel()
            await asyncio.wait(streaming, timeout=2.0)
            for stream in ingest.background():
                with contextlib.suppress(Exception):  # what the stream still held
                    await asyncio.wait_for(stream.flush(force=True), 2.0)
        # Jobs in flight get half the time to finish (their rows are written or held) ...
        if running:
            _, pending = await asyncio.wait(set(running), timeout=SHUTDOWN_SECONDS / 2)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
                log.warning("jobs cancelled at shutdown", jobs=len(pending))
        scheduler.shutdown(wait=False)
        # ... then the rows held through an outage get what is left.
        remaining = max(deadline - asyncio.get_running_loop().time() - 0.5, 0.5)
        stored = await _flush(ingest.writer, settings, within=remaining)
        await runner.cleanup()
    log.info("exporter stopped", held_rows_lost=0 if stored else len(ingest.writer.backlog))
    return 0 if stored else 1  # rows that could not be stored are a failed run


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
