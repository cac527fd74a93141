"""Kalshi's websocket, I/O only (API_NOTES 2.8): signed handshake, subscriptions by command.

One connection carries the ``ticker`` and ``trade`` channels (``send_initial_snapshot``) for a
set of market tickers, or for every market (``all_markets``), changed in place with
``update_subscription``. The handshake is signed (``KALSHI-ACCESS-*`` over timestamp + ``GET`` +
the path) on every attempt, through the shared runner's handshake hook; a refused key (401/403)
stops the connection for good. ``on_connect(gap)`` runs after every (re)connect and on
:meth:`renew`, before the subscription, so the caller can re-snapshot the tickers over REST.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from exporter.venues.kalshi.client import KalshiSigner
from exporter.venues.stream import Channel, Connection

CHANNELS = ("ticker", "trade")
Frame = Callable[[str, datetime], None]
Reconnected = Callable[[bool], Awaitable[None]]


class KalshiChannel(Channel):
    """The Kalshi websocket over :attr:`tickers` (or every market)."""

    def __init__(
        self,
        url: str,
        signer: KalshiSigner,
        on_frame: Frame,
        on_connect: Reconnected,
        *,
        silence: float,
        all_markets: bool = False,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.on_frame = on_frame
        self.on_connect = on_connect
        self.all_markets = all_markets
        self.tickers: set[str] = set()
        """What the subscription carries (the next connect subscribes these)."""
        self.sids: dict[str, int] = {}
        """channel -> sid of the current subscription, as the venue confirmed it."""
        self._ids = itertools.count(1)
        self._renewing: asyncio.Task[None] | None = None
        path = urlsplit(url).path or "/"
        self.connection = Connection(
            url, self, venue="kalshi", silence=silence,
            handshake=lambda: signer.headers("GET", path), reconnect_delays=reconnect_delays,
        )  # fmt: skip

    async def opened(self, ws: ClientConnection, first: bool) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
        await self.on_connect(not first)
        await self._subscribe(ws)

    def received(self, text: str, at: datetime) -> None:
        self.on_frame(text, at)

    def confirmed(self, channel: str, sid: int) -> None:
        """The venue's ``subscribed`` answer: ``channel`` runs under ``sid``."""
        self.sids[channel] = sid

    def renew(self) -> None:
        """After a ``seq`` gap: drop the subscriptions, re-snapshot, subscribe again (the only
        way to get the snapshots back). Runs beside the reader; a second call while one runs
        does nothing."""
        ws = self.connection.ws
        if ws is None or (self._renewing is not None and not self._renewing.done()):
            return
        self._renewing = asyncio.create_task(self._renew(ws))

    async def _renew(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            if self.sids:
                await self._send(ws, "unsubscribe", sids=sorted(self.sids.values()))
            await self.on_connect(True)
            await self._subscribe(ws)

    async def _subscribe(self, ws: ClientConnection) -> None:
        self.sids.clear()
        params: dict[str, Any] = {"channels": list(CHANNELS), "send_initial_snapshot": True}
        if not self.all_markets:
            if not self.tickers:
                return
            params["market_tickers"] = sorted(self.tickers)
        await self._send(ws, "subscribe", **params)

    async def update(self, tickers: set[str]) -> None:
        """Follow ``tickers`` in place (``update_subscription``)."""
        ws = self.connection.ws
        if ws is None or not self.connected or tickers == self.tickers or self.all_markets:
            return
        added, removed = tickers - self.tickers, self.tickers - tickers
        self.tickers = set(tickers)
        if not self.sids:
            await self._subscribe(ws)
            return
        with contextlib.suppress(ConnectionClosed):
            for sid in self.sids.values():
                for action, changed in (("add_markets", added), ("delete_markets", removed)):
                    if changed:
                        await self._send(ws, "update_subscription", sids=[sid], action=action,
                                         market_tickers=sorted(changed),
                                         send_initial_snapshot=True)  # fmt: skip

    async def _send(self, ws: ClientConnection, command: str, **params: Any) -> None:
        message = {"id": next(self._ids), "cmd": command, "params": params}
        await ws.send(orjson.dumps(message).decode())
