"""``movers backfill``: fetch the venues' price history now, with a progress bar.

Without ``--market`` it fills what the service would (the hot set and watchlist as the stored
markets rank them, then every other open market), up to now where an outcome has no live row
yet; with ``--market`` those markets, whatever their status. Cursors make a second run ask
only what is missing, and a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from exporter.config import Settings, parse_duration
from exporter.errors import ConfigError
from exporter.ingest.backfill import Backfill, Tally, Target, plan_of
from exporter.ingest.common import Rejects, hot_set
from exporter.ingest.history_sources import KalshiHistory, PolymarketHistory
from exporter.ingest.hot import HotSet, Known
from exporter.model import Venue
from exporter.storage.database import Database
from exporter.storage.db import create_pool, prepare_schema
from exporter.storage.history import HistoryStore, StoredMarket
from exporter.storage.maintenance import run_rollups
from exporter.storage.migrate import Mode
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.polymarket.client import PolymarketClient

TRADING = frozenset({"open", "paused", "upcoming"})


def run_backfill(settings: Settings, args: argparse.Namespace) -> int:
    since = settings.backfill.since
    if args.since is not None:
        try:
            since = parse_duration(args.since)
        except ValueError as exc:
            raise ConfigError([("--since", str(exc))], "arguments") from None
        if since <= timedelta(0):
            raise ConfigError([("--since", "must be longer than zero")], "arguments")
    fidelity = None if args.fidelity is None else parse_duration(args.fidelity)
    venues = [Venue(args.venue)] if args.venue else [
        v for v in Venue if getattr(settings.venues, v.value).enabled
    ]  # fmt: skip
    report = prepare_schema(settings)
    return asyncio.run(_run(settings, report.mode, venues, args.market, since, fidelity))


async def _run(
    settings: Settings,
    mode: Mode,
    venues: list[Venue],
    refs: list[str] | None,
    since: timedelta,
    fidelity: timedelta | None,
) -> int:
    console = Console(stderr=True)
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    store = HistoryStore(Database(pool), mode)
    rejects = Rejects()
    failed = 0
    try:
        plans = {v: await _plan(store, settings, v, refs, fidelity) for v in venues}
        if refs and not any(targets for plan in plans.values() for _, targets in plan):
            raise ConfigError(
                [("--market", f"no stored market matches {', '.join(refs)}")], "arguments"
            )
        columns = (
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("requests · {task.fields[rows]:,} points"), TimeRemainingColumn(),
        )  # fmt: skip
        with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
            for venue, plan in plans.items():
                task = progress.add_task(f"{venue.value} history", total=None, rows=0)

                def show(tally: Tally, task: Any = task) -> None:
                    progress.update(task, total=tally.planned or None, completed=tally.sent,
                                    rows=tally.rows)  # fmt: skip

                async with _source(settings, venue, rejects) as source:
                    backfill = Backfill.from_settings(source, store, settings, show)
                    tally = await backfill.run(plan, since=since)
                failed += tally.requests["failed"]
                console.print(_summary(venue, tally))
        if mode is not Mode.TIMESCALE:
            async with pool.connection() as conn:
                await run_rollups(conn, settings.storage)
    finally:
        await pool.close()
    return 1 if failed else 0


async def _plan(
    store: HistoryStore,
    settings: Settings,
    venue: Venue,
    refs: list[str] | None,
    fidelity: timedelta | None,
) -> list[tuple[timedelta, list[Target]]]:
    markets = await store.markets(venue.value, refs)
    prefix = f"{venue.value}:"
    if refs:
        targets = [
            Target(prefix + asset, asset, m.status in TRADING)
            for m in markets
            for asset in m.assets
        ]
        return [(fidelity or settings.backfill.hot_fidelity, targets)]
    config = getattr(settings.venues, venue.value)
    hot = HotSet(venue)
    watched = set(config.watchlist)
    hot.choose(
        {m.native_id: Known(m.assets, m.volume_24h, m.liquidity, m.slug) for m in markets},
        hot_set(
            {m.native_id: m.volume_24h for m in markets},
            config.hot_size,
            {m.native_id for m in markets if _watched(m, watched)},
        ),
    )
    plan = plan_of(hot, settings.backfill, config.stream.size)
    if fidelity is not None:
        return [(fidelity, [t for _, targets in plan for t in targets])]
    return plan


def _watched(market: StoredMarket, watchlist: set[str]) -> bool:
    return bool({market.native_id, market.slug, market.event_id} & watchlist)


@asynccontextmanager
async def _source(
    settings: Settings, venue: Venue, rejects: Rejects
) -> AsyncIterator[PolymarketHistory | KalshiHistory]:
    """The venue's history source over a client of its own, closed afterwards."""
    if venue is Venue.POLYMARKET:
        client = PolymarketClient(settings.venues.polymarket)
        try:
            yield PolymarketHistory(client, rejects)
        finally:
            await client.aclose()
        return
    kalshi = KalshiClient(settings.venues.kalshi)
    try:
        yield KalshiHistory(kalshi, rejects)
    finally:
        await kalshi.aclose()


def _summary(venue: Venue, tally: Tally) -> str:
    done = sum(tally.done.values())
    covered = sum(tally.covered.values())
    failed = tally.requests["failed"]
    text = (
        f"{venue.value}: {done:,} outcomes filled, {covered:,} already covered; "
        f"{tally.rows:,} points written, {tally.duplicates:,} already stored; "
        f"{sum(tally.requests.values()):,} requests"
    )
    if failed:
        text += f", {failed:,} failed ({tally.last_error_text}): run again to retry them"
    return text
