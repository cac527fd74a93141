"""Polymarket jobs: discovery, hot-set and long-tail prices, and trades."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from exporter.categories import Categories
from exporter.config import PolymarketConfig
from exporter.ingest.common import Rejects, cursor_pages, hot_set, share_out
from exporter.ingest.hot import HotSet, Known
from exporter.model import MarketStatus, Snapshot, Trade, Venue, native_of
from exporter.normalize.polymarket import (
    EventContext,
    GammaEventsPage,
    ParsedMarket,
    decode_event,
    decode_market,
    event_context,
    parse_book,
    parse_market,
    parse_trade,
)
from exporter.storage.writer import Writer
from exporter.venues.polymarket.client import (
    BOOKS_BATCH,
    TRADES_OFFSET_LIMIT,
    TRADES_PAGE,
    PolymarketClient,
)

VENUE = Venue.POLYMARKET
TRADE_MARKETS_PER_CALL = 20
LOOKUP_BATCH = 50


class PolymarketIngest:
    """The Polymarket jobs over one client and one writer; state lives between runs."""

    venue = VENUE.value

    def __init__(
        self,
        config: PolymarketConfig,
        client: PolymarketClient,
        writer: Writer,
        categories: Categories,
        rejects: Rejects,
        owns: Callable[[str], bool] | None = None,
        paired: frozenset[str] = frozenset(),
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.config = config
        self.shard = shard
        """``(index, count)``: with several shards the leader lists the venue for all of them
        and each tail sweep reads one slice of the events (:attr:`sliced`), not all of them."""
        self.sliced: tuple[datetime | None, datetime | None] | None = None
        """This shard's slice of the open events by end date (both inclusive; None: unbounded),
        from the last listing; None with one shard, or before."""
        self.listed: frozenset[str] = frozenset()
        """Every open market of the last listing, whoever owns it (several shards)."""
        self.hot_anywhere: frozenset[str] = frozenset()
        """Every shard's hot set (their owners poll and stream them): the slice sweep skips
        them."""
        self.paired = paired
        """Markets of the cross-venue pairs (slugs or condition ids): always hot, so both sides
        of a pair are as fresh as the venues allow."""
        self.owns = owns or (lambda _condition: True)
        """Whether this collector's shard owns a market (condition id): it lists, prices and
        follows only those (README, Running several collectors)."""
        self.client = client
        self.writer = writer
        self.categories = categories
        self.rejects = rejects
        self.hot = HotSet(VENUE)
        """Every open market (condition id -> tokens) and the hot set: top ``hot_size`` by
        24 h volume plus the watchlist; streams carry it, :meth:`refresh_hot` polls the rest."""
        self.last_sweep_seconds: float | None = None
        """Duration of the last tail sweep (every open market's price from Gamma)."""
        self.trade_marks: dict[str, datetime] = {}
        self._marks_loaded = False
        self.last_hot_tokens = 0

    # --- discovery ------------------------------------------------------------------------------

    async def _sweep(
        self, *, every: bool = False, ending: tuple[datetime | None, datetime | None] = (None, None)
    ) -> AsyncIterator[tuple[list[ParsedMarket], set[str]]]:
        """Every open event (ending within ``ending``), page by page (keyset: offset paging
        fails past 2,000): its markets (this shard's only unless ``every``), and which of them
        belong to an event without an end date."""

        def fetch(cursor: str | None) -> Awaitable[tuple[GammaEventsPage, datetime]]:
            return self.client.events_page(cursor, ending=ending)

        async for page, received in cursor_pages(fetch, _next_cursor):
            parsed: list[ParsedMarket] = []
            undated: set[str] = set()
            for event in self.rejects.each(decode_event, page.events):
                context = event_context(event, self.categories.polymarket)
                markets = list(
                    self.rejects.each(_gamma_market, event.markets or [], received, context)
                )
                if not (isinstance(event.endDate, str) and event.endDate):
                    undated.update(p.market.native_id for p in markets)
                parsed += markets
            yield [p for p in parsed if every or self.owns(p.market.native_id)], undated

    async def discover(self) -> dict[str, int]:
        """Upsert every open market and its outcomes (with Gamma's prices for the long tail);
        markets no longer listed as open get their final status, or ``delisted``. With several
        shards the leader alone runs it and stores the whole listing, which the others read
        back (:meth:`refresh_listing`): the venue is listed once, not once a shard."""
        seen: dict[str, Known] = {}
        ends: list[int] = []
        sharded = self.shard[1] > 1
        undated: list[ParsedMarket] = []
        counts = {"markets": 0, "snapshots": 0}
        async for parsed, endless in self._sweep(every=sharded):
            await self.writer.upsert_markets([p.market for p in parsed])
            await self.writer.upsert_outcomes([o for p in parsed for o in p.outcomes])
            counts["markets"] += len(parsed)
            for p in parsed:
                if p.market.status is MarketStatus.OPEN:
                    seen[p.market.native_id] = Known(
                        p.tokens, p.market.volume_24h or 0.0, p.market.liquidity, p.market.slug
                    )
                    if p.market.end_time is not None:
                        ends.append(int(p.market.end_time.timestamp()))
            if sharded:  # the slice sweeps price the rest, once
                undated += [p for p in parsed if p.market.native_id in endless]
            else:
                counts["snapshots"] += await self._write_tail(parsed)
        counts["gone"] = await self._settle_vanished(set(seen), every=sharded)
        counts["hot"] = self._choose(seen, ends)
        if undated:  # in no slice (they filter on the event's end date): priced here
            counts["snapshots"] += await self._write_slice(undated)
        return counts

    async def refresh_listing(self) -> dict[str, int]:
        """With several shards: the open listing as the leader's discovery stored it, for this
        shard's hot set and slice (read every ``tail_every``, so a new market is priced within
        a cycle of its discovery)."""
        listed: dict[str, Known] = {}
        ends: list[int] = []
        for market in await self.writer.open_listing(VENUE):
            listed[market.native_id] = Known(
                tuple(market.assets), market.volume_24h or 0.0, market.liquidity, market.slug
            )
            if market.end_time is not None:
                ends.append(int(market.end_time.timestamp()))
        return {"markets": len(listed), "hot": self._choose(listed, ends)}

    def _choose(self, listed: dict[str, Known], ends: list[int]) -> int:
        """The hot set among this shard's markets of ``listed``; with several shards, the slices
        and every shard's hot set too. The size of the hot set."""
        if self.shard[1] > 1:
            self._share_out(listed, ends)
        known = {c: k for c, k in listed.items() if self.owns(c)}
        watched = self.config.watched
        watches = {
            c: watched.get(c) or watched[k.slug or ""]
            for c, k in known.items()
            if c in watched or k.slug in watched
        }
        paired = {c for c, k in known.items() if c in self.paired or k.slug in self.paired}
        volumes = {c: k.volume_24h for c, k in known.items()}
        self.hot.choose(
            known, hot_set(volumes, self.config.hot_size, set(watches) | paired), watches
        )
        return len(self.hot)

    def _share_out(self, listed: dict[str, Known], ends: list[int]) -> None:
        """This shard's slice of the open events by end date and every shard's hot set
        (:func:`~exporter.ingest.common.share_out`)."""
        names = self.config.watched.keys() | self.paired
        always = {c for c, k in listed.items() if c in names or k.slug in names}
        volumes = {c: k.volume_24h for c, k in listed.items()}
        share = share_out(VENUE, volumes, ends, self.shard, self.config.hot_size, always)
        self.sliced = (
            (
                None if share.start is None else datetime.fromtimestamp(share.start, UTC),
                None if share.stop is None else datetime.fromtimestamp(share.stop, UTC) - _TICK,
            )
            if ends
            else None
        )
        self.listed = frozenset(listed)
        self.hot_anywhere = share.hot_anywhere

    async def _settle_vanished(self, listed: set[str], *, every: bool = False) -> int:
        """Markets stored as open that the open listing no longer carries (this shard's, or
        ``every`` one): look them up (closed markets are only served with ``closed=true``) and
        store what they became."""
        stored = {c for c in await self.writer.open_market_ids(VENUE) if every or self.owns(c)}
        vanished = sorted(stored - listed)
        found: set[str] = set()
        for i in range(0, len(vanished), LOOKUP_BATCH):
            batch = vanished[i : i + LOOKUP_BATCH]
            raws, received = await self.client.markets_by_condition(batch, closed=True)
            parsed = list(self.rejects.each(_gamma_market, raws, received, _LOOKUP_CONTEXT))
            for p in parsed:
                found.add(p.market.native_id)
                await self.writer.set_status(p.market.market_id, p.market.status, received)
        missing = [c for c in vanished if c not in found]
        for condition in missing:
            await self.writer.set_status(f"{VENUE.value}:{condition}", MarketStatus.DELISTED, None)
        return len(vanished)

    # --- prices ---------------------------------------------------------------------------------

    async def _write_tail(self, parsed: list[ParsedMarket]) -> int:
        hot = self.hot
        snapshots = [s for p in parsed if p.market.native_id not in hot for s in p.snapshots]
        result = await self.writer.write_snapshots(snapshots)
        return result.written

    async def _write_slice(self, parsed: list[ParsedMarket]) -> int:
        """A slice's prices (several shards): every listed market no shard keeps hot."""
        listed, skip = self.listed, self.hot_anywhere
        snapshots = [
            s
            for p in parsed
            if p.market.native_id in listed and p.market.native_id not in skip
            for s in p.snapshots
        ]
        return (await self.writer.write_snapshots(snapshots)).written

    async def refresh_tail(self) -> dict[str, int]:
        """Prices of every known market outside the hot set, from Gamma's market fields; with
        several shards, every market of the events of this shard's slice but those some shard
        keeps hot."""
        started = time.monotonic()
        written = 0
        if self.sliced is not None:
            async for parsed, _ in self._sweep(every=True, ending=self.sliced):
                written += await self._write_slice(parsed)
        else:
            async for parsed, _ in self._sweep():
                known = [p for p in parsed if p.market.native_id in self.hot.known]
                written += await self._write_tail(known)
        self.last_sweep_seconds = time.monotonic() - started
        return {"snapshots": written}

    async def refresh_hot(self) -> dict[str, int]:
        """The hot set's prices from CLOB books (``POST /books``, 500 tokens a call)."""
        tokens = self.hot.polled()
        self.last_hot_tokens = len(tokens)
        written = 0
        for i in range(0, len(tokens), BOOKS_BATCH):
            raws, received = await self.client.books(tokens[i : i + BOOKS_BATCH])
            snapshots: list[Snapshot] = []
            for snapshot in self.rejects.each(parse_book, raws, received):
                if snapshot is None:
                    continue  # one-sided and never traded: nothing to display
                volume, liquidity = self.hot.figures(native_of(snapshot.outcome_id))
                snapshots.append(
                    msgspec.structs.replace(snapshot, volume_24h=volume, liquidity=liquidity)
                )
            written += (await self.writer.write_snapshots(snapshots)).written
        return {"snapshots": written, "tokens": len(tokens)}

    # --- trades ---------------------------------------------------------------------------------

    async def collect_trades(self) -> dict[str, int]:
        """New trades of the hot set, newest first back to the newest one already stored."""
        if not self._marks_loaded:
            stored = await self.writer.newest_trades(VENUE)
            self.trade_marks = {c: t for c, t in stored.items() if self.owns(c)}
            self._marks_loaded = True
        owner = self.hot.market_of
        markets = self.hot.markets
        written = 0
        for i in range(0, len(markets), TRADE_MARKETS_PER_CALL):
            group = markets[i : i + TRADE_MARKETS_PER_CALL]
            marks = [self.trade_marks.get(c) for c in group]
            floor = None if any(m is None for m in marks) else min(m for m in marks if m)
            trades: list[Trade] = []
            offset = 0
            while offset <= TRADES_OFFSET_LIMIT - TRADES_PAGE:
                raws, _ = await self.client.trades(group, offset=offset)
                trades += self.rejects.each(parse_trade, raws)
                offset += len(raws)
                oldest = trades[-1].time if trades else None
                if len(raws) < TRADES_PAGE or floor is None or (oldest and oldest < floor):
                    break  # a first run takes one page; later runs stop at what is stored
            fresh = [
                t
                for t in trades
                if (mark := self.trade_marks.get(owner(native_of(t.outcome_id)) or "")) is None
                or t.time >= mark
            ]
            written += (await self.writer.write_trades(fresh)).written
            for trade in fresh:
                condition = owner(native_of(trade.outcome_id))
                if condition and (
                    condition not in self.trade_marks or trade.time > self.trade_marks[condition]
                ):
                    self.trade_marks[condition] = trade.time
        return {"trades": written}

    def summary(self) -> dict[str, Any]:
        return {"known": len(self.hot.known), "hot": len(self.hot)}


_TICK = timedelta(microseconds=1)
"""A slice ends just before the next one starts (Gamma's end dates carry microseconds)."""

# A market looked up on its own (to learn what became of it): only its status is used.
_LOOKUP_CONTEXT = EventContext(None, None, None, "Other", ())


def _next_cursor(page: GammaEventsPage) -> str | None:
    return page.next_cursor


def _gamma_market(raw: msgspec.Raw, received: datetime, context: EventContext) -> ParsedMarket:
    return parse_market(decode_market(raw), received, context)
