"""The Kalshi hot set over the websocket (API_NOTES 2.8), when an API key is configured.

One connection carries ``ticker`` (the quotes, with ``send_initial_snapshot``) and ``trade``
(stored, deduplicated against the REST tape by ``trade_id``; its ``seq`` per subscription, like
the ``ok`` acks', shows gaps) for the hot set and watchlist, at most ``stream.size`` tickers,
changed in place with ``update_subscription`` — or for every market (``stream.all_markets``). The
handshake is signed (``KALSHI-ACCESS-*`` over timestamp + ``GET`` + the path) on every connect,
so the reconnect loop is ours, with the websockets library's own backoff. After every
(re)connect, and on a ``seq`` gap (then the subscriptions are dropped and made again, the only
way to get snapshots back), the tickers are re-snapshotted over REST. A watchdog restarts a
connection without market data for ``stream.silence``. Quotes are coalesced per outcome and
written through the change-only writer; while the connection is down the hot REST job polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Generator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import backoff as default_backoff
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from exporter.config import KalshiStreamConfig
from exporter.errors import ExporterError, ParseError
from exporter.ingest.coalesce import Coalescer
from exporter.ingest.common import Rejects
from exporter.model import Trade, native_of
from exporter.normalize.kalshi import parse_trade
from exporter.normalize.kalshi_stream import Sequences, parse_message, parse_ticker

if TYPE_CHECKING:
    from exporter.ingest.kalshi import KalshiIngest

log = structlog.get_logger("exporter.stream")
CHANNELS = ("ticker", "trade")
MESSAGE_KINDS = frozenset(
    {"ticker", "trade", "subscribed", "ok", "unsubscribed", "error", "orderbook_snapshot",
     "orderbook_delta"}
)  # fmt: skip
RESHARD_SECONDS = 5.0
FLUSHES_PER_WINDOW = 4
"""Flushes per coalescing window: an outcome gets at most one row a window, sooner when quiet."""


class KalshiStreamer:
    def __init__(
        self,
        config: KalshiStreamConfig,
        ws_url: str,
        ingest: KalshiIngest,
        rejects: Rejects,
        *,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.stream = config
        self.url = ws_url
        self.path = urlsplit(ws_url).path or "/"
        self.ingest = ingest
        self.rejects = rejects
        self.reconnect_delays = reconnect_delays or default_backoff
        self.rows = Coalescer("kalshi", ingest.writer, config.coalesce.total_seconds())
        self.tickers: set[str] = set()
        self.sids: dict[str, int] = {}
        """channel -> sid of the current subscription."""
        self.sequences = Sequences()
        self.trades: list[Trade] = []
        self.connected = False
        self.ws: ClientConnection | None = None
        self.messages: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        """connects, reconnects, watchdog_restarts, closed, refused."""
        self.counts: Counter[str] = Counter()
        """gaps (reconnects and seq gaps re-snapshotted)."""
        self._ids = itertools.count(1)
        self._resubscribe = asyncio.Event()

    def wanted(self) -> list[str]:
        return self.ingest.hot[: self.stream.size]

    def live(self) -> set[str]:
        if not self.connected:
            return set()
        return set(self.ingest.hot) if self.stream.all_markets else set(self.tickers)

    venue = "kalshi"

    def subscribed(self) -> int:
        return len(self.tickers) if self.connected else 0

    def connections(self) -> list[tuple[str, bool]]:
        return [("0", self.connected)]

    def event_total(self, name: str) -> int:
        return self.events[name]

    def rest_polled(self) -> int:
        """Hot-set markets the REST job covers now: every one not live (never counted twice)."""
        live = self.live()
        return sum(1 for ticker in self.ingest.hot if ticker not in live)

    # --- the connection -------------------------------------------------------------------------

    async def _connections(self) -> None:
        delays: Generator[float] | None = None
        while True:
            signer = self.ingest.client.signer
            assert signer is not None
            try:
                async with connect(
                    self.url, additional_headers=signer.headers("GET", self.path),
                    ping_interval=None, open_timeout=10, max_size=2**24,
                ) as ws:  # fmt: skip
                    delays = None
                    await self._serve(ws)
            except InvalidStatus as exc:
                self.events["refused"] += 1
                status = exc.response.status_code
                if status in (401, 403):
                    # The key is not accepted: trying again cannot help. REST keeps polling the
                    # hot set (the stream is down), until the key is fixed and the exporter
                    # restarted.
                    log.error(
                        "stream handshake refused: the API key is not accepted; streaming stops,"
                        " REST polls the hot set",
                        venue="kalshi",
                        status=status,
                    )
                    return
                log.warning("stream handshake refused", venue="kalshi", status=status)
            except (OSError, TimeoutError, WebSocketException) as exc:
                self.events["closed"] += 1
                log.info("stream closed", venue="kalshi", error=type(exc).__name__)
            finally:
                self.connected = False
                self.ws = None
            if delays is None:
                delays = self.reconnect_delays()
            await asyncio.sleep(next(delays))

    async def _serve(self, ws: ClientConnection) -> None:
        first = self.events["connects"] == 0
        self.events["connects"] += 1
        if not first:
            self.events["reconnects"] += 1
        self.tickers = set(self.wanted())
        await self._resnapshot(gap=not first)
        self.ws = ws
        await self._subscribe(ws)
        self.connected = True
        while True:
            if self._resubscribe.is_set():
                self._resubscribe.clear()
                await self._renew(ws)
            try:
                async with asyncio.timeout(self.stream.silence.total_seconds()):
                    text = await ws.recv()
            except TimeoutError:
                self.events["watchdog_restarts"] += 1
                log.warning("stream silent, restarting", venue="kalshi")
                await ws.close(1000, "watchdog: no market data")
                return
            self.on_frame(text if isinstance(text, str) else text.decode(), datetime.now(UTC))

    async def _subscribe(self, ws: ClientConnection) -> None:
        self.sids.clear()
        self.sequences.reset()
        params: dict[str, Any] = {"channels": list(CHANNELS), "send_initial_snapshot": True}
        if not self.stream.all_markets:
            if not self.tickers:
                return
            params["market_tickers"] = sorted(self.tickers)
        command = {"id": next(self._ids), "cmd": "subscribe", "params": params}
        await ws.send(orjson.dumps(command).decode())

    async def _renew(self, ws: ClientConnection) -> None:
        """After a seq gap: drop the subscriptions, re-snapshot over REST, subscribe again."""
        if self.sids:
            command = {"id": next(self._ids), "cmd": "unsubscribe",
                       "params": {"sids": sorted(self.sids.values())}}  # fmt: skip
            await ws.send(orjson.dumps(command).decode())
        await self._resnapshot(gap=True)
        await self._subscribe(ws)

    async def _resnapshot(self, *, gap: bool) -> None:
        if gap:
            self.counts["gaps"] += 1
        if not self.tickers:
            return
        try:
            await self.ingest.refresh_tickers(sorted(self.tickers))
        except ExporterError as error:
            log.warning("stream re-snapshot failed", venue="kalshi", error=str(error))

    # --- messages -------------------------------------------------------------------------------

    def on_frame(self, text: str, received: datetime) -> None:
        try:
            message = parse_message(text)
        except ParseError as error:
            self.rejects.add(error, text[:200])
            return
        kind = message["type"]
        self.messages[kind if kind in MESSAGE_KINDS else "other"] += 1
        if kind == "subscribed":
            msg = message.get("msg")
            if isinstance(msg, dict) and isinstance(msg.get("sid"), int):
                self.sids[str(msg.get("channel"))] = msg["sid"]
            return
        if message.get("sid") not in (None, *self.sids.values()):
            return  # a subscription already dropped
        if self.sequences.check(message):
            log.info("stream sequence gap", venue="kalshi", sid=message.get("sid"))
            self._resubscribe.set()
            return
        if kind == "ticker":
            try:
                snapshot = parse_ticker(message, received)
            except ParseError as error:
                self.rejects.add(error, message)
                return
            if snapshot is not None:
                self.rows.add(snapshot.outcome_id, snapshot)
        elif kind == "trade":
            try:
                trade = parse_trade(message.get("msg"))
            except ParseError as error:
                self.rejects.add(error, message)
                return
            ticker = native_of(trade.outcome_id)
            if self.stream.all_markets or ticker in self.tickers:
                self.trades.append(trade)  # the tape job stores the same trade_id once
        elif kind == "error":
            log.warning("stream error message", venue="kalshi", msg=message.get("msg"))

    async def reshard(self) -> None:
        """Follow the hot set in place (``update_subscription``)."""
        wanted = set(self.wanted())
        ws = self.ws
        if ws is None or not self.connected or wanted == self.tickers or self.stream.all_markets:
            return
        added, removed = wanted - self.tickers, self.tickers - wanted
        self.tickers = wanted
        if not self.sids:
            await self._subscribe(ws)
            return
        with contextlib.suppress(ConnectionClosed):
            for sid in self.sids.values():
                for action, tickers in (("add_markets", added), ("delete_markets", removed)):
                    if tickers:
                        command: dict[str, Any] = {
                            "id": next(self._ids), "cmd": "update_subscription",
                            "params": {"sids": [sid], "action": action,
                                       "market_tickers": sorted(tickers),
                                       "send_initial_snapshot": True},
                        }  # fmt: skip
                        await ws.send(orjson.dumps(command).decode())

    async def flush(self, *, force: bool = False) -> int:
        """Write the streamed trades, and the pending quotes that are due (all with ``force``)."""
        if self.trades:
            batch, self.trades = self.trades, []
            self.counts["trades_written"] += (await self.ingest.writer.write_trades(batch)).written
        volumes = self.ingest.volumes
        return await self.rows.flush(lambda key: (volumes.get(native_of(key)), None), force=force)

    async def run(self) -> None:
        connection = asyncio.create_task(self._connections())
        next_reshard = time.monotonic() + RESHARD_SECONDS
        try:
            while True:
                await asyncio.sleep(self.stream.coalesce.total_seconds() / FLUSHES_PER_WINDOW)
                if time.monotonic() >= next_reshard:
                    await self.reshard()
                    next_reshard = time.monotonic() + RESHARD_SECONDS
                try:
                    await self.flush()
                except ExporterError as error:
                    log.warning("stream rows not written", venue="kalshi", error=str(error))
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connection
