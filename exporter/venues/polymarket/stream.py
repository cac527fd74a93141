"""Polymarket's CLOB market channel, I/O only: one websocket connection per shard of assets.

Each :class:`MarketChannel` subscribes its assets on connect, changes the subscription in place
(``operation: subscribe/unsubscribe``), sends the text ``PING`` every ``ping_every`` (the venue
drops a socket without it after about 10 s), and closes the socket itself when no market data
arrived for ``silence`` (the watchdog: a subscription that silently stopped). Reconnects use the
websockets library's own reconnecting ``connect`` and its backoff (``reconnect_delays`` is
swappable, so tests can use milliseconds). Frames go to ``on_frame`` with their receive time;
``on_connect`` runs after every (re)connect, before subscribing, with the shard's assets, so the
caller can re-snapshot them over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Generator
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger("exporter.stream")

Frame = Callable[[str, datetime], None]
Connected = Callable[[set[str], bool], Awaitable[None]]
Resumed = Callable[[set[str]], Coroutine[Any, Any, None]]


class MarketChannel:
    """One connection of the market channel over a shard of at most ``capacity`` assets."""

    def __init__(
        self,
        url: str,
        index: int,
        on_frame: Frame,
        on_connect: Connected,
        *,
        silence: float,
        quiet: float | None = None,
        on_resume: Resumed | None = None,
        ping_every: float = 10.0,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.url = url
        self.index = index
        self.assets: set[str] = set()
        self.on_frame = on_frame
        self.on_connect = on_connect
        self.silence = silence
        # Quiet before the watchdog's silence: the REST fallback starts before the restart.
        self.quiet = silence / 2 if quiet is None else min(quiet, silence / 2)
        """Seconds without market data after which the assets are not live (REST polls them)
        and the data that resumes it is followed by a REST re-snapshot."""
        self.on_resume = on_resume
        self.last_data = time.monotonic()
        """When market data last arrived, across reconnects."""
        self._resuming: asyncio.Task[None] | None = None
        self.ping_every = ping_every
        self.reconnect_delays = reconnect_delays
        self.ws: ClientConnection | None = None
        self.connected = False
        self.events: Counter[str] = Counter()
        """connects, reconnects, watchdog_restarts, closed."""

    def flowing(self, now: float | None = None) -> bool:
        """Connected, and market data arrived within ``quiet`` seconds."""
        now = time.monotonic() if now is None else now
        return self.connected and now - self.last_data < self.quiet

    async def run(self) -> None:
        """Connect, read and reconnect until cancelled."""
        options: dict[str, Any] = {"ping_interval": None, "max_size": 2**24, "open_timeout": 10}
        if self.reconnect_delays is not None:
            options["reconnect_delays"] = self.reconnect_delays
        async for ws in connect(self.url, **options):
            first = self.events["connects"] == 0
            self.events["connects"] += 1
            if not first:
                self.events["reconnects"] += 1
            try:
                await self._serve(ws, first)
            except ConnectionClosed as exc:
                self.events["closed"] += 1
                code = exc.rcvd.code if exc.rcvd else None
                log.info("stream closed", connection=self.index, code=code)
            finally:
                self.connected = False
                self.ws = None

    async def _serve(self, ws: ClientConnection, first: bool) -> None:
        assets = set(self.assets)
        # REST first, then the subscription: what changed while disconnected is stored before
        # the channel's own snapshots and deltas, which are all newer.
        await self.on_connect(assets, first)
        await ws.send(_subscribe(assets))
        self.ws = ws
        self.connected = True
        pinger = asyncio.create_task(send_pings(ws, self.ping_every))
        try:
            while True:
                try:
                    async with asyncio.timeout(self.silence):
                        while True:
                            text = await ws.recv()
                            if isinstance(text, bytes):
                                text = text.decode()
                            if text.strip() == "PONG":
                                continue
                            self._data_arrived()
                            self.on_frame(text, datetime.now(UTC))
                            break
                except TimeoutError:
                    self.events["watchdog_restarts"] += 1
                    log.warning("stream silent, restarting", connection=self.index,
                                seconds=self.silence)  # fmt: skip
                    await ws.close(1000, "watchdog: no market data")
                    return
        finally:
            await stop_pinging(pinger)

    def _data_arrived(self) -> None:
        """Note the data; after a quiet spell, re-read the assets over REST: what changed in the
        last seconds of a silence is not replayed by the channel."""
        now = time.monotonic()
        quiet_for, self.last_data = now - self.last_data, now
        resuming = self._resuming is not None and not self._resuming.done()
        if quiet_for >= self.quiet and self.on_resume is not None and not resuming:
            self.events["resumes"] += 1
            self._resuming = asyncio.create_task(self.on_resume(set(self.assets)))

    async def update(self, assets: set[str]) -> None:
        """Change the subscription in place to ``assets``."""
        added, removed = assets - self.assets, self.assets - assets
        self.assets = set(assets)
        ws = self.ws
        if ws is None:
            return  # the next connect subscribes the new set
        with contextlib.suppress(ConnectionClosed):
            if removed:
                await ws.send(_operation(removed, "unsubscribe"))
            if added:  # the venue answers with a `book` for each
                await ws.send(_operation(added, "subscribe"))


async def send_pings(ws: ClientConnection, every: float) -> None:
    """The text ``PING`` every ``every`` seconds until the connection closes (Polymarket's
    sockets want it: the market channel every 10 s, RTDS every 5 s)."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.send("PING")
            await asyncio.sleep(every)


async def stop_pinging(pinger: asyncio.Task[None]) -> None:
    """Cancel ``pinger`` and wait for it. Its own cancellation is swallowed, but a cancellation
    of the task waiting here is not: otherwise a connection cancelled while it closes would
    reconnect, and whoever cancelled it would wait for ever."""
    pinger.cancel()
    try:
        await pinger
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def _subscribe(assets: set[str]) -> str:
    return orjson.dumps({"assets_ids": sorted(assets), "type": "market"}).decode()


def _operation(assets: set[str], operation: str) -> str:
    return orjson.dumps({"assets_ids": sorted(assets), "operation": operation}).decode()
