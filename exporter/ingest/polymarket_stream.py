"""The Polymarket hot set over the market channel: shards, top of book, coalesced writes.

The :class:`~exporter.ingest.hot.HotSet` (hot markets and watchlist), at most ``stream.size``
outcomes, is
spread over connections of at most ``stream.per_connection`` assets, adjusted in place as the hot
set changes. Every update becomes a snapshot row through the same change-only writer, coalesced
per outcome over ``stream.coalesce``. After every (re)connect the shard's assets are
re-snapshotted over REST (``POST /books``) so no gap survives; each reconnect is counted as a gap.
While a connection is down its assets are not :meth:`live`, so the hot REST job polls them again.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Generator
from datetime import UTC, datetime

import msgspec
import structlog

from exporter.config import PolymarketConfig
from exporter.errors import ExporterError, ParseError
from exporter.ingest.coalesce import Coalescer
from exporter.ingest.common import Rejects
from exporter.ingest.hot import HotSet
from exporter.ingest.streams import FLUSHES_PER_WINDOW, flushing
from exporter.normalize.polymarket_stream import Books, decode_message, parse_frame
from exporter.storage.writer import Writer
from exporter.venues.polymarket.client import BOOKS_BATCH, PolymarketClient
from exporter.venues.polymarket.stream import MarketChannel
from exporter.venues.stream import stop

log = structlog.get_logger("exporter.stream")
MESSAGE_KINDS = frozenset(
    {"book", "price_change", "last_trade_price", "tick_size_change", "best_bid_ask",
     "new_market", "market_resolved"}
)  # fmt: skip
"""Message types counted by name (any other is counted as ``other``: labels stay bounded)."""


class PolymarketStreamer:
    def __init__(
        self,
        config: PolymarketConfig,
        hot: HotSet,
        client: PolymarketClient,
        writer: Writer,
        rejects: Rejects,
        *,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.config = config
        self.stream = config.stream
        self.hot = hot
        self.client = client
        self.rejects = rejects
        self.reconnect_delays = reconnect_delays
        self.books = Books()
        self.channels: list[MarketChannel] = []
        self.rows = Coalescer("polymarket", writer, config.stream.coalesce.total_seconds())
        self.messages: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        """gaps (reconnects re-snapshotted), resnapshot_rows."""
        self._tasks: dict[int, asyncio.Task[None]] = {}
        hot.live = self.live

    # --- what is streamed -----------------------------------------------------------------------

    def wanted(self) -> list[str]:
        """The hot set's tokens in hot-set order, at most ``stream.size``."""
        return self.hot.assets(self.stream.size)

    def live(self) -> set[str]:
        """Assets whose connection is up and delivering: the hot REST job leaves them to the
        stream (a connection quiet for longer than the hot cadence is polled again)."""
        now = time.monotonic()
        return {a for c in self.channels if c.flowing(now) for a in c.assets}

    def subscribed(self) -> int:
        return sum(len(c.assets) for c in self.channels)

    venue = "polymarket"

    def connections(self) -> list[tuple[str, bool]]:
        return [(str(c.index), c.connected) for c in self.channels]

    def event_total(self, name: str) -> int:
        return sum(c.events[name] for c in self.channels)

    def rest_polled(self) -> int:
        """Hot-set outcomes the REST job covers now: every one not live (never counted twice)."""
        return len(self.hot.polled())

    async def reshard(self) -> None:
        """Move the subscription towards :meth:`wanted` in place: drop assets that left, fill
        connections with room, open new connections for the rest."""
        wanted = self.wanted()
        keep = set(wanted)
        placed: set[str] = set()
        for channel in self.channels:
            assets = channel.assets & keep
            placed |= assets
            if assets != channel.assets:
                await channel.update(assets)
        waiting = [a for a in wanted if a not in placed]
        for channel in self.channels:
            room = self.stream.per_connection - len(channel.assets)
            if waiting and room > 0:
                await channel.update(channel.assets | set(waiting[:room]))
                waiting = waiting[room:]
        while waiting:
            channel = MarketChannel(
                self.config.ws_url, len(self.channels), self.on_frame, self._on_connect,
                silence=self.stream.silence.total_seconds(),
                quiet=self.config.hot_every.total_seconds(),
                ping_every=self.stream.ping_every.total_seconds(),
                reconnect_delays=self.reconnect_delays,
            )  # fmt: skip
            channel.assets = set(waiting[: self.stream.per_connection])
            waiting = waiting[self.stream.per_connection :]
            self.channels.append(channel)
            self._tasks[channel.index] = asyncio.create_task(channel.run())
        self.books.forget(set(self.books.tops) - keep)

    # --- frames in, rows out --------------------------------------------------------------------

    def on_frame(self, text: str, received: datetime) -> None:
        try:
            parsed = parse_frame(text)
        except ParseError as error:
            self.rejects.add(error, text[:200])
            return
        if isinstance(parsed, str):
            self.messages[parsed] += 1
            return
        for message in parsed:
            try:
                kind, changed = self.books.apply(message)
            except ParseError as error:
                self.rejects.add(error, message)
                continue
            self.messages[kind if kind in MESSAGE_KINDS else "other"] += 1
            for asset in changed:
                snapshot = self.books.snapshot(asset, received)
                if snapshot is not None:
                    self.rows.add(asset, snapshot)

    async def _on_connect(self, assets: set[str], first: bool) -> None:
        """Re-snapshot ``assets`` over REST: what changed while the connection was down."""
        if not first:
            self.counts["gaps"] += 1
        tokens = sorted(assets)
        for i in range(0, len(tokens), BOOKS_BATCH):
            try:
                raws, _ = await self.client.books(tokens[i : i + BOOKS_BATCH])
            except ExporterError as error:
                log.warning("stream re-snapshot failed", error=str(error))
                return
            for raw in raws:
                self._on_message(raw)

    def _on_message(self, raw: msgspec.Raw) -> None:
        """A REST book (``POST /books``), applied as the channel's own ``book`` message."""
        try:
            message = decode_message(raw)
            message.event_type = "book"
            _, changed = self.books.apply(message)
        except ParseError as error:
            self.rejects.add(error, raw)
            return
        received = datetime.now(UTC)
        for asset in changed:
            snapshot = self.books.snapshot(asset, received)
            if snapshot is not None:
                self.rows.add(asset, snapshot)
                self.counts["resnapshot_rows"] += 1

    async def flush(self, *, force: bool = False) -> int:
        """Write the pending updates that are due (all of them with ``force``)."""
        return await self.rows.flush(self.hot.figures, force=force)

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the hot set and write coalesced updates until cancelled."""
        try:
            await flushing(
                self.venue,
                self.stream.coalesce.total_seconds() / FLUSHES_PER_WINDOW,
                self.flush,
                self.reshard,
            )
        finally:
            for task in self._tasks.values():
                await stop(task)
