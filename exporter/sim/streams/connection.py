"""What the simulated sockets share: a client connection with a bounded outbox, and the read
loop of Polymarket's sockets (text ``PING``/``PONG``, the rest commands).

Publishing is synchronous (the world hands over its changes); each connection has a bounded
outbox drained by its own task, so a slow client is cut off instead of slowing the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import orjson
from aiohttp import WSMsgType, web

from exporter.sim.world import MILLI

if TYPE_CHECKING:
    from exporter.sim.wire import Host

OUTBOX_LIMIT = 10_000


def level_diff(
    old: list[tuple[int, float]], new: list[tuple[int, float]]
) -> list[tuple[int, float, float]]:
    """``(price, old size, new size)`` for every level that appeared, vanished or changed."""
    before, after = dict(old), dict(new)
    return [
        (p, before.get(p, 0.0), after.get(p, 0.0))
        for p in sorted(before.keys() | after.keys())
        if before.get(p, 0.0) != after.get(p, 0.0)
    ]


class Connection:
    """One client socket with an outbox of frames."""

    def __init__(self, ws: web.WebSocketResponse, venue: str, host: Host) -> None:
        self.ws = ws
        self.venue = venue
        self.host = host
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(OUTBOX_LIMIT)
        self.closed = False
        self._writer = asyncio.create_task(self._drain())

    def send(self, message: object, kind: str) -> None:
        self.send_raw(orjson.dumps(message).decode(), kind)

    def send_raw(self, text: str, kind: str) -> None:
        if self.closed:
            return
        try:
            self.outbox.put_nowait(text)
            self.host.truth.frames[(self.venue, kind)] += 1
        except asyncio.QueueFull:
            self.drop(1008, "client too slow")

    def drop(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)
        asyncio.get_running_loop().create_task(self.ws.close(code=code, message=reason.encode()))

    async def _drain(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.closed = True
                return

    async def finish(self) -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


class _Pinged(Protocol):
    conn: Connection
    last_ping: float


_C = TypeVar("_C", bound=_Pinged)


async def serve_pinged(
    ws: web.WebSocketResponse,
    client: _C,
    clients: set[_C],
    command: Callable[[_C, str], None],
) -> None:
    """Read a Polymarket socket until it closes: text ``PING`` is answered ``PONG`` (and noted
    for the ping timeout), any other text is a command."""
    clients.add(client)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            if message.data == "PING":
                client.last_ping = time.monotonic()
                client.conn.send_raw("PONG", "PONG")
                continue
            command(client, message.data)
    finally:
        clients.discard(client)
        await client.conn.finish()


def mirror(levels: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(MILLI - p, s) for p, s in levels]
