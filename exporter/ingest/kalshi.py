"""Kalshi jobs: discovery (series, events, markets), prices, the hot set, and trades."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec

from exporter.categories import Categories
from exporter.config import KalshiConfig
from exporter.ingest.common import Rejects, cursor_pages, hot_set, share_out
from exporter.ingest.hot import HotSet, Known
from exporter.model import MarketStatus, Trade, Venue
from exporter.normalize.kalshi import (
    EventInfo,
    KalshiMarketsPage,
    ParsedMarket,
    decode_market,
    parse_event,
    parse_market,
    parse_series,
    parse_trade,
)
from exporter.storage.writer import Writer
from exporter.venues.kalshi.client import TICKERS_PER_CALL, KalshiClient

VENUE = Venue.KALSHI
TRADE_PAGES_PER_RUN = 20


class KalshiIngest:
    venue = VENUE.value

    def __init__(
        self,
        config: KalshiConfig,
        client: KalshiClient,
        writer: Writer,
        categories: Categories,
        rejects: Rejects,
        owns: Callable[[str], bool] | None = None,
        paired: frozenset[str] = frozenset(),
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.config = config
        self.shard = shard
        """``(index, count)``: with several shards the price sweep reads one slice of the
        listing (:attr:`sliced`) instead of all of it."""
        self.sliced: tuple[int | None, int | None] | None = None
        """This shard's slice of the open listing by close time (unix seconds, both inclusive;
        None: unbounded), from the last discovery; None with one shard, or before."""
        self.listed: frozenset[str] = frozenset()
        """Every open market the last discovery listed, whoever owns it (several shards)."""
        self.hot_anywhere: frozenset[str] = frozenset()
        """Every shard's hot set (their owners poll and stream them): the slice sweep skips
        them."""
        self.paired = paired
        """Markets of the cross-venue pairs (tickers): always hot."""
        self.owns = owns or (lambda _ticker: True)
        """Whether this collector's shard owns a market (ticker): it lists, prices and follows
        only those (README, Running several collectors)."""
        self.client = client
        self.writer = writer
        self.categories = categories
        self.rejects = rejects
        self.series_category: dict[str, str] = {}
        self.events: dict[str, EventInfo] = {}
        self.event_of: dict[str, str] = {}
        self.hot = HotSet(VENUE)
        """Every open market (ticker -> 24 h volume in contracts) and the hot set: top
        ``hot_size`` by volume plus the watchlist; a stream carries it, :meth:`refresh_hot`
        polls what it does not."""
        self.last_hot_tokens = 0
        self.trade_mark: datetime | None = None
        self._mark_loaded = False
        self.last_sweep_seconds: float | None = None

    # --- discovery ------------------------------------------------------------------------------

    async def _load_series_and_events(self) -> None:
        raws, _ = await self.client.series()
        for ticker, category in self.rejects.each(parse_series, raws):
            self.series_category[ticker] = self.categories.kalshi(category)
        async for page, _ in cursor_pages(self.client.events_page, lambda page: page.cursor):
            for event in self.rejects.each(parse_event, page.events or []):
                self.events[event.ticker] = event

    def _parse(self, raw: msgspec.Raw, received: datetime) -> ParsedMarket:
        market = decode_market(raw)
        event = self.events.get(market.event_ticker or "")
        series = event.series if event is not None else None
        category = self.series_category.get(series or "", "Other")
        return parse_market(market, received, event, category)

    async def _sweep(
        self,
        *,
        tickers: list[str] | None = None,
        status: str | None = "open",
        every: bool = False,
        closing: tuple[int | None, int | None] = (None, None),
    ) -> AsyncIterator[list[ParsedMarket]]:
        """The listing's markets (but combos), this shard's only unless ``every``."""
        started = time.monotonic()

        def fetch(cursor: str) -> Awaitable[tuple[KalshiMarketsPage, datetime]]:
            return self.client.markets_page(cursor, status=status, tickers=tickers,
                                            closing=closing)  # fmt: skip

        async for page, received in cursor_pages(fetch, lambda page: page.cursor):
            markets = self.rejects.each(self._parse, page.markets or [], received)
            yield [
                p
                for p in markets
                if not p.multivariate and (every or self.owns(p.market.native_id))
            ]
        if tickers is None:
            self.last_sweep_seconds = time.monotonic() - started

    async def discover(self) -> dict[str, int]:
        """Series (categories), events (titles), then every open non-combo market. With several
        shards the leader alone runs it and stores the whole listing, which the others read back
        (:meth:`refresh_listing`): the venue is listed once, not once a shard."""
        await self._load_series_and_events()
        volumes: dict[str, float] = {}
        counts = {"markets": 0, "snapshots": 0}
        sharded = self.shard[1] > 1
        closes: list[int] = []
        async for parsed in self._sweep(every=sharded):
            await self.writer.upsert_markets([p.market for p in parsed])
            await self.writer.upsert_outcomes([p.outcome for p in parsed])
            counts["markets"] += len(parsed)
            for p in parsed:
                if p.market.status is MarketStatus.OPEN:
                    volumes[p.market.native_id] = p.market.volume_24h or 0.0
                    self.event_of[p.market.native_id] = p.market.event_id or ""
                    if p.market.end_time is not None:
                        closes.append(int(p.market.end_time.timestamp()))
            if not sharded:  # sharded, the slice sweep prices every market, once
                snapshots = [p.snapshot for p in parsed if p.snapshot is not None]
                counts["snapshots"] += (await self.writer.write_snapshots(snapshots)).written
        counts["gone"] = await self._settle_vanished(set(volumes), every=sharded)
        counts["hot"] = self._choose(volumes, closes)
        return counts

    async def refresh_listing(self) -> dict[str, int]:
        """With several shards: the open listing as the leader's discovery stored it, for this
        shard's slice and hot set (read every ``prices_every``, so a new market is priced within
        a cycle of its discovery)."""
        volumes: dict[str, float] = {}
        closes: list[int] = []
        for market in await self.writer.open_listing(VENUE):
            ticker, end = market.native_id, market.end_time
            volumes[ticker] = market.volume_24h or 0.0
            self.event_of[ticker] = market.event_id or ""
            if end is not None:
                closes.append(int(end.timestamp()))
        return {"markets": len(volumes), "hot": self._choose(volumes, closes)}

    def _choose(self, listed: dict[str, float], closes: list[int]) -> int:
        """The hot set among this shard's markets of ``listed`` (ticker -> 24 h volume); with
        several shards, the slices and every shard's hot set too. The size of the hot set."""
        if self.shard[1] > 1:
            self._share_out(listed, closes)
        volumes = {t: v for t, v in listed.items() if self.owns(t)}
        watched = self.config.watched
        watches = {
            t: watched.get(t) or watched[self.event_of.get(t, "")]
            for t in volumes
            if t in watched or self.event_of.get(t) in watched
        }
        self.hot.choose(
            {t: Known((t,), volume) for t, volume in volumes.items()},
            hot_set(volumes, self.config.hot_size, set(watches) | (self.paired & set(volumes))),
            watches,
        )
        return len(self.hot)

    def _share_out(self, listed: dict[str, float], closes: list[int]) -> None:
        """This shard's slice of the whole open listing by close time and every shard's hot set
        (:func:`~exporter.ingest.common.share_out`)."""
        watched = self.config.watched
        always = {t for t in listed if t in watched or self.event_of.get(t) in watched}
        always |= self.paired & set(listed)
        share = share_out(VENUE, listed, closes, self.shard, self.config.hot_size, always)
        self.sliced = (
            (share.start, share.stop - 1 if share.stop is not None else None) if closes else None
        )
        self.listed = frozenset(listed)
        self.hot_anywhere = share.hot_anywhere

    async def _settle_vanished(self, listed: set[str], *, every: bool = False) -> int:
        """Markets stored as open that the open listing no longer carries (this shard's, or
        ``every`` one): their status now (``closed``, ``determined``, ``finalized`` …), or
        ``delisted`` when gone."""
        stored = {t for t in await self.writer.open_market_ids(VENUE) if every or self.owns(t)}
        vanished = sorted(stored - listed)
        found: set[str] = set()
        for i in range(0, len(vanished), TICKERS_PER_CALL):
            async for parsed in self._sweep(
                tickers=vanished[i : i + TICKERS_PER_CALL], status=None, every=every
            ):
                for p in parsed:
                    found.add(p.market.native_id)
                    await self.writer.set_status(
                        p.market.market_id, p.market.status, p.market.observed_at
                    )
        for ticker in vanished:
            if ticker not in found:
                await self.writer.set_status(f"{VENUE.value}:{ticker}", MarketStatus.DELISTED, None)
        return len(vanished)

    # --- prices ---------------------------------------------------------------------------------

    async def refresh_prices(self) -> dict[str, Any]:
        """Every known open market's quote, from ``/markets`` pages; with several shards, every
        market of this shard's slice of the listing but those some shard keeps hot."""
        written = 0
        if self.sliced is not None:
            skip, listed = self.hot_anywhere, self.listed
            async for parsed in self._sweep(every=True, closing=self.sliced):
                snapshots = [
                    p.snapshot
                    for p in parsed
                    if p.snapshot
                    and p.market.native_id in listed
                    and p.market.native_id not in skip
                ]
                written += (await self.writer.write_snapshots(snapshots)).written
            return {"snapshots": written, "sweep_seconds": self.last_sweep_seconds}
        async for parsed in self._sweep():
            snapshots = [
                p.snapshot for p in parsed if p.snapshot and p.market.native_id in self.hot.known
            ]
            written += (await self.writer.write_snapshots(snapshots)).written
        return {"snapshots": written, "sweep_seconds": self.last_sweep_seconds}

    async def refresh_hot(self) -> dict[str, int]:
        """The hot set's quotes, but for the tickers a live stream connection carries."""
        tickers = self.hot.polled()
        self.last_hot_tokens = len(tickers)
        return {"snapshots": await self.refresh_tickers(tickers)}

    async def refresh_tickers(self, tickers: list[str]) -> int:
        """These markets' quotes over REST (``/markets?tickers=…``); rows written."""
        written = 0
        for i in range(0, len(tickers), TICKERS_PER_CALL):
            async for parsed in self._sweep(tickers=tickers[i : i + TICKERS_PER_CALL]):
                snapshots = [p.snapshot for p in parsed if p.snapshot is not None]
                written += (await self.writer.write_snapshots(snapshots)).written
        return written

    # --- trades ---------------------------------------------------------------------------------

    async def collect_trades(self) -> dict[str, Any]:
        """The hot set's new trades from the global tape, from the newest one stored on (one
        call covers every market; per-ticker calls would not fit the budget). With several
        shards the leader alone reads the tape, once for every shard's hot set."""
        sharded = self.shard[1] > 1
        if sharded and not self.listed:
            return {"trades": 0, "skipped": "the listing is not read yet"}
        if not self._mark_loaded:
            marks = await self.writer.newest_trades(VENUE)
            mine = (t for k, t in marks.items() if sharded or self.owns(k))
            self.trade_mark = max(mine, default=None)
            self._mark_loaded = True
        hot = {f"{VENUE.value}:{t}" for t in (self.hot_anywhere if sharded else self.hot)}
        min_ts = int(self.trade_mark.timestamp()) if self.trade_mark else None
        trades: list[Trade] = []
        newest: datetime | None = None
        pages = cursor_pages(
            lambda cursor: self.client.trades_page(cursor, min_ts=min_ts),
            lambda page: page.cursor,
            limit=TRADE_PAGES_PER_RUN if min_ts is not None else 1,
        )
        async for page, _ in pages:
            for trade in self.rejects.each(parse_trade, page.trades or []):
                newest = trade.time if newest is None or trade.time > newest else newest
                if trade.outcome_id in hot:
                    trades.append(trade)
        written = (await self.writer.write_trades(trades)).written
        # The tape was read from the mark on, whatever the market: the mark moves with it.
        if newest is not None and (self.trade_mark is None or newest > self.trade_mark):
            self.trade_mark = newest
        return {"trades": written}

    def forget_trade_mark(self) -> None:
        """Stopped leading: the tape mark goes stale while another leader reads it; read it
        again from the database on leading again."""
        self._mark_loaded = False
