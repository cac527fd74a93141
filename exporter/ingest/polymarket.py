"""Polymarket jobs: discovery, hot-set and long-tail prices, and trades."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import msgspec

from exporter.categories import Categories
from exporter.config import PolymarketConfig
from exporter.ingest.common import Rejects, cursor_pages, hot_set
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
    ) -> None:
        self.config = config
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

    async def _sweep(self) -> AsyncIterator[tuple[list[ParsedMarket], datetime]]:
        """Every open event, page by page (keyset: offset paging fails past 2,000)."""
        async for page, received in cursor_pages(self.client.events_page, _next_cursor):
            parsed: list[ParsedMarket] = []
            for event in self.rejects.each(decode_event, page.events):
                context = event_context(event, self.categories.polymarket)
                parsed += self.rejects.each(_gamma_market, event.markets or [], received, context)
            yield [p for p in parsed if self.owns(p.market.native_id)], received

    async def discover(self) -> dict[str, int]:
        """Upsert every open market and its outcomes (with Gamma's prices for the long tail);
        markets no longer listed as open get their final status, or ``delisted``."""
        seen: dict[str, Known] = {}
        counts = {"markets": 0, "snapshots": 0}
        async for parsed, _ in self._sweep():
            await self.writer.upsert_markets([p.market for p in parsed])
            await self.writer.upsert_outcomes([o for p in parsed for o in p.outcomes])
            counts["markets"] += len(parsed)
            for p in parsed:
                if p.market.status is MarketStatus.OPEN:
                    seen[p.market.native_id] = Known(
                        p.tokens, p.market.volume_24h or 0.0, p.market.liquidity, p.market.slug
                    )
            counts["snapshots"] += await self._write_tail(parsed)
        counts["gone"] = await self._settle_vanished(set(seen))
        watched = self.config.watched
        watches = {
            c: watched.get(c) or watched[k.slug or ""]
            for c, k in seen.items()
            if c in watched or k.slug in watched
        }
        paired = {c for c, k in seen.items() if c in self.paired or k.slug in self.paired}
        volumes = {c: k.volume_24h for c, k in seen.items()}
        self.hot.choose(
            seen, hot_set(volumes, self.config.hot_size, set(watches) | paired), watches
        )
        counts["hot"] = len(self.hot)
        return counts

    async def _settle_vanished(self, listed: set[str]) -> int:
        """Markets stored as open that the open listing no longer carries: look them up
        (closed markets are only served with ``closed=true``) and store what they became."""
        stored = {c for c in await self.writer.open_market_ids(VENUE) if self.owns(c)}
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

    async def refresh_tail(self) -> dict[str, int]:
        """Prices of every known market outside the hot set, from Gamma's market fields."""
        started = time.monotonic()
        written = 0
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


# A market looked up on its own (to learn what became of it): only its status is used.
_LOOKUP_CONTEXT = EventContext(None, None, None, "Other", ())


def _next_cursor(page: GammaEventsPage) -> str | None:
    return page.next_cursor


def _gamma_market(raw: msgspec.Raw, received: datetime, context: EventContext) -> ParsedMarket:
    return parse_market(decode_market(raw), received, context)
