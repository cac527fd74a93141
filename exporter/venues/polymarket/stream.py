"""Polymarket's websockets, I/O only: the CLOB market channel and the RTDS trades feed.

A :class:`MarketChannel` is one connection of the market channel over a shard of assets: it
subscribes them on connect, changes the subscription in place (``operation:
subscribe/unsubscribe``) and sends the text ``PING`` every ``ping_every`` (the venue drops a
socket without it after about 10 s). ``on_connect`` runs after every (re)connect, before the
subscription, with the shard's assets, so the caller can re-snapshot them over REST; after a
quiet spell the data that resumes runs it again.

:class:`TradesFeed` is the real-time data socket's ``activity``/``trades`` subscription (PING
every 5 s). Both run on the shared :class:`~exporter.venues.stream.Connection`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Generator
from datetime import datetime

import orjson
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from exporter.venues.stream import Channel, Connection

Frame = Callable[[str, datetime], None]
Connected = Callable[[set[str], bool], Awaitable[None]]
VENUE = "polymarket"
RTDS_SUBSCRIBE = orjson.dumps(
    {"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]}
).decode()


class MarketChannel(Channel):
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
        ping_every: float = 10.0,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.index = index
        self.assets: set[str] = set()
        self.on_frame = on_frame
        self.on_connect = on_connect
        self.connection = Connection(
            url, self, venue=VENUE, name=str(index), silence=silence, quiet=quiet,
            resumed=self._resumed, ping_every=ping_every, reconnect_delays=reconnect_delays,
        )  # fmt: skip

    def flowing(self, now: float | None = None) -> bool:
        return self.connection.flowing(now)

    async def opened(self, ws: ClientConnection, first: bool) -> None:
        # REST first, then the subscription: what changed while disconnected is stored before
        # the channel's own snapshots and deltas, which are all newer.
        assets = set(self.assets)
        await self.on_connect(assets, first)
        await ws.send(_subscription(assets, type="market"))

    def received(self, text: str, at: datetime) -> None:
        self.on_frame(text, at)

    async def _resumed(self) -> None:
        await self.on_connect(set(self.assets), False)

    async def update(self, assets: set[str]) -> None:
        """Change the subscription in place to ``assets``."""
        added, removed = assets - self.assets, self.assets - assets
        self.assets = set(assets)
        ws = self.connection.ws
        if ws is None:
            return  # the next connect subscribes the new set
        with contextlib.suppress(ConnectionClosed):
            if removed:
                await ws.send(_subscription(removed, operation="unsubscribe"))
            if added:  # the venue answers with a `book` for each
                await ws.send(_subscription(added, operation="subscribe"))


class TradesFeed(Channel):
    """RTDS's global trade firehose (``activity``/``trades``), frames to ``on_frame``."""

    def __init__(
        self,
        url: str,
        on_frame: Frame,
        *,
        silence: float,
        ping_every: float,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.on_frame = on_frame
        self.connection = Connection(
            url, self, venue=VENUE, name="rtds", silence=silence, ping_every=ping_every,
            reconnect_delays=reconnect_delays, max_size=2**22,
        )  # fmt: skip

    async def opened(self, ws: ClientConnection, first: bool) -> None:
        await ws.send(RTDS_SUBSCRIBE)

    def received(self, text: str, at: datetime) -> None:
        self.on_frame(text, at)


def _subscription(assets: set[str], **fields: str) -> str:
    return orjson.dumps({"assets_ids": sorted(assets), **fields}).decode()
