"""The Kalshi hot set over the websocket (API_NOTES 2.8), when an API key is configured.

The :class:`~exporter.venues.kalshi.stream.KalshiChannel` carries ``ticker`` (the quotes, with
``send_initial_snapshot``) and ``trade`` (stored, deduplicated against the REST tape by
``trade_id``; its ``seq`` per subscription, like the ``ok`` acks', shows gaps) for the hot set and
watchlist, at most ``stream.size`` tickers, changed in place — or for every market
(``stream.all_markets``). After every (re)connect, and on a ``seq`` gap (then the subscriptions
are dropped and made again, the only way to get snapshots back), the tickers are re-snapshotted
over REST. Quotes are coalesced per outcome and written through the change-only writer; while
the connection is down the hot REST job polls.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime

import structlog

from exporter.config import KalshiStreamConfig
from exporter.errors import ExporterError, ParseError
from exporter.ingest.coalesce import Coalescer
from exporter.ingest.common import Rejects
from exporter.ingest.hot import HotSet
from exporter.ingest.streams import FLUSHES_PER_WINDOW, flushing
from exporter.model import Trade, native_of
from exporter.normalize.kalshi import parse_trade
from exporter.normalize.kalshi_stream import (
    Sequences,
    parse_message,
    parse_subscribed,
    parse_ticker,
)
from exporter.storage.writer import Writer
from exporter.venues.kalshi.client import KalshiSigner
from exporter.venues.kalshi.stream import KalshiChannel
from exporter.venues.stream import stop

log = structlog.get_logger("exporter.stream")
MESSAGE_KINDS = frozenset(
    {"ticker", "trade", "subscribed", "ok", "unsubscribed", "error", "orderbook_snapshot",
     "orderbook_delta"}
)  # fmt: skip


class KalshiStreamer:
    def __init__(
        self,
        config: KalshiStreamConfig,
        ws_url: str,
        hot: HotSet,
        signer: KalshiSigner,
        refresh: Callable[[list[str]], Awaitable[int]],
        writer: Writer,
        rejects: Rejects,
        *,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.stream = config
        self.hot = hot
        self.refresh = refresh
        """Re-snapshot these tickers over REST (the hot REST job's own reader)."""
        self.writer = writer
        self.rejects = rejects
        self.channel = KalshiChannel(
            ws_url, signer, self.on_frame, self._on_connect,
            silence=config.silence.total_seconds(), all_markets=config.all_markets,
            reconnect_delays=reconnect_delays,
        )  # fmt: skip
        self.rows = Coalescer("kalshi", writer, config.coalesce.total_seconds())
        self.sequences = Sequences()
        self.trades: list[Trade] = []
        self.messages: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        """gaps (reconnects and seq gaps re-snapshotted), trades_written."""
        hot.live = self.live

    venue = "kalshi"

    @property
    def connected(self) -> bool:
        return self.channel.connected

    @property
    def events(self) -> Counter[str]:
        """connects, reconnects, closed, refused, watchdog_restarts."""
        return self.channel.events

    @property
    def tickers(self) -> set[str]:
        return self.channel.tickers

    @property
    def sids(self) -> dict[str, int]:
        return self.channel.sids

    def wanted(self) -> list[str]:
        return self.hot.assets(self.stream.size)

    def live(self) -> set[str]:
        if not self.connected:
            return set()
        return set(self.hot.assets()) if self.stream.all_markets else set(self.tickers)

    def subscribed(self) -> int:
        return len(self.tickers) if self.connected else 0

    def connections(self) -> list[tuple[str, bool]]:
        return [("0", self.connected)]

    def event_total(self, name: str) -> int:
        return self.events[name]

    def rest_polled(self) -> int:
        """Hot-set markets the REST job covers now: every one not live (never counted twice)."""
        return len(self.hot.polled())

    async def _on_connect(self, gap: bool) -> None:
        """Before every subscription: follow the hot set, and re-snapshot it over REST."""
        self.sequences.reset()
        self.channel.tickers = set(self.wanted())
        if gap:
            self.counts["gaps"] += 1
        if not self.tickers:
            return
        try:
            await self.refresh(sorted(self.tickers))
        except ExporterError as error:
            log.warning("stream re-snapshot failed", venue="kalshi", error=str(error))

    # --- messages -------------------------------------------------------------------------------

    def on_frame(self, text: str, received: datetime) -> None:
        try:
            frame = parse_message(text)
        except ParseError as error:
            self.rejects.add(error, text[:200])
            return
        kind = frame.type
        self.messages[kind if kind in MESSAGE_KINDS else "other"] += 1
        if kind == "subscribed":
            try:
                subscribed = parse_subscribed(frame)
            except ParseError as error:
                self.rejects.add(error, frame)
                return
            if subscribed.sid is not None:
                self.channel.confirmed(str(subscribed.channel), subscribed.sid)
            return
        if frame.sid is not None and frame.sid not in self.sids.values():
            return  # a subscription already dropped
        if self.sequences.check(frame):
            log.info("stream sequence gap", venue="kalshi", sid=frame.sid)
            self.channel.renew()
            return
        if kind == "ticker":
            try:
                snapshot = parse_ticker(frame, received)
            except ParseError as error:
                self.rejects.add(error, frame)
                return
            if snapshot is not None:
                self.rows.add(snapshot.outcome_id, snapshot)
        elif kind == "trade":
            try:
                trade = parse_trade(frame.body("trade"))
            except ParseError as error:
                self.rejects.add(error, frame)
                return
            ticker = native_of(trade.outcome_id)
            if self.stream.all_markets or ticker in self.tickers:
                self.trades.append(trade)  # the tape job stores the same trade_id once
        elif kind == "error":
            log.warning("stream error message", venue="kalshi",
                        msg=bytes(frame.msg).decode(errors="replace")[:300])  # fmt: skip

    async def reshard(self) -> None:
        """Follow the hot set in place (``update_subscription``)."""
        await self.channel.update(set(self.wanted()))

    async def flush(self, *, force: bool = False) -> int:
        """Write the streamed trades, and the pending quotes that are due (all with ``force``)."""
        if self.trades:
            batch, self.trades = self.trades, []
            self.counts["trades_written"] += (await self.writer.write_trades(batch)).written
        # Quotes are keyed by outcome id ("kalshi:<ticker>"), the hot set by ticker.
        return await self.rows.flush(lambda key: self.hot.figures(native_of(key)), force=force)

    async def run(self) -> None:
        connection = asyncio.create_task(self.channel.run())
        try:
            await flushing(
                self.venue,
                self.stream.coalesce.total_seconds() / FLUSHES_PER_WINDOW,
                self.flush,
                self.reshard,
            )
        finally:
            await stop(connection)
