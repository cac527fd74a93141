"""The one websocket runner the venues' streams share: connect, reconnect, watchdog, pings.

A :class:`Connection` keeps one websocket open until cancelled. It reconnects with the websockets
library's own reconnecting ``connect`` and backoff (``reconnect_delays`` is swappable, so tests
use milliseconds); a ``process_exception`` policy decides which failures are worth another try:
network errors, closes and refused handshakes are, but a 401/403 (a key the venue does not
accept) is not, and stops the connection for good. ``handshake`` runs before every attempt and
returns the headers of that attempt (Kalshi signs each handshake with the time of day).

On every (re)connect the :class:`Session` ``opened`` runs first (subscribe, and re-snapshot over
REST what changed while the connection was down); every frame but the keep-alive answer goes to
``received`` with its receive time. The text ``PING`` goes out every ``ping_every`` where the
venue wants it. The watchdog closes a connection without data for ``silence`` (a subscription
that silently stopped) and lets the loop reconnect. After ``quiet`` seconds without data the
connection is not :meth:`~Connection.flowing` (the REST jobs poll its assets again) and the data
that ends the spell calls the session's ``resumed`` (re-snapshot, as after a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Generator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

log = structlog.get_logger("exporter.stream")

KEEPALIVE_ANSWER = "PONG"
REFUSED_FOR_GOOD = frozenset({401, 403})
"""Handshake statuses no retry can help: the credentials are not accepted."""


class Session(Protocol):
    """What a stream does with its connection: subscribe when it opens, take the frames."""

    async def opened(self, ws: ClientConnection, first: bool) -> None: ...
    def received(self, text: str, at: datetime) -> None: ...


class _Connect(connect):
    """websockets' reconnecting ``connect``, with fresh handshake headers on every attempt."""

    def __init__(
        self, uri: str, handshake: Callable[[], Mapping[str, str]] | None, **options: Any
    ) -> None:
        super().__init__(uri, **options)
        self.handshake = handshake

    async def connect(self) -> ClientConnection:
        if self.handshake is not None:
            self.additional_headers = dict(self.handshake())
        return await super().connect()


class Connection:
    """One venue websocket, kept open and fed to a :class:`Session` until cancelled."""

    def __init__(
        self,
        url: str,
        session: Session,
        *,
        venue: str,
        name: str = "0",
        silence: float,
        quiet: float | None = None,
        resumed: Callable[[], Coroutine[Any, Any, None]] | None = None,
        ping_every: float | None = None,
        handshake: Callable[[], Mapping[str, str]] | None = None,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
        max_size: int = 2**24,
    ) -> None:
        self.url = url
        self.session = session
        self.venue = venue
        self.name = name
        self.silence = silence
        # Quiet before the watchdog's silence: the REST fallback starts before the restart.
        self.quiet = silence / 2 if quiet is None else min(quiet, silence / 2)
        self.resumed = resumed
        self.ping_every = ping_every
        self.handshake = handshake
        self.reconnect_delays = reconnect_delays
        self.max_size = max_size
        self.ws: ClientConnection | None = None
        self.connected = False
        """Open and subscribed."""
        self.last_data = time.monotonic()
        """When data last arrived, across reconnects."""
        self.events: Counter[str] = Counter()
        """connects, reconnects, closed, refused, watchdog_restarts, resumes."""
        self._resuming: asyncio.Task[None] | None = None

    def flowing(self, now: float | None = None) -> bool:
        """Connected, and data arrived within ``quiet`` seconds."""
        now = time.monotonic() if now is None else now
        return self.connected and now - self.last_data < self.quiet

    def _retry(self, exc: Exception) -> Exception | None:
        """The reconnect policy: None to try again, the exception to stop."""
        if isinstance(exc, InvalidStatus):
            self.events["refused"] += 1
            status = exc.response.status_code
            if status in REFUSED_FOR_GOOD:
                return exc
            log.warning("stream handshake refused", venue=self.venue, status=status)
            return None
        if isinstance(exc, (OSError, TimeoutError, WebSocketException)):
            self.events["closed"] += 1
            log.info("stream connect failed", venue=self.venue, connection=self.name,
                     error=type(exc).__name__)  # fmt: skip
            return None
        return exc

    async def run(self) -> None:
        """Connect, read and reconnect until cancelled (or until the venue refuses the key)."""
        options: dict[str, Any] = {
            "ping_interval": None, "open_timeout": 10, "max_size": self.max_size,
            "process_exception": self._retry,
        }  # fmt: skip
        if self.reconnect_delays is not None:
            options["reconnect_delays"] = self.reconnect_delays
        try:
            async for ws in _Connect(self.url, self.handshake, **options):
                first = self.events["connects"] == 0
                self.events["connects"] += 1
                if not first:
                    self.events["reconnects"] += 1
                try:
                    await self._serve(ws, first)
                except ConnectionClosed as exc:
                    self.events["closed"] += 1
                    code = exc.rcvd.code if exc.rcvd else None
                    log.info("stream closed", venue=self.venue, connection=self.name, code=code)
                finally:
                    self.connected = False
                    self.ws = None
        except InvalidStatus as exc:
            # Trying again cannot help: the REST jobs keep polling what the stream would carry
            # (it is down), until the credentials are fixed and the exporter restarted.
            log.error(
                "stream handshake refused: the credentials are not accepted; streaming stops,"
                " REST polls the hot set",
                venue=self.venue,
                status=exc.response.status_code,
            )

    async def _serve(self, ws: ClientConnection, first: bool) -> None:
        await self.session.opened(ws, first)
        self.ws = ws
        self.connected = True
        pinger = (
            asyncio.create_task(send_pings(ws, self.ping_every))
            if self.ping_every is not None
            else None
        )
        try:
            while True:
                try:
                    async with asyncio.timeout(self.silence):
                        text = await ws.recv()
                        while _keepalive(text):  # answers to our pings are not data
                            text = await ws.recv()
                except TimeoutError:
                    self.events["watchdog_restarts"] += 1
                    log.warning("stream silent, restarting", venue=self.venue,
                                connection=self.name, seconds=self.silence)  # fmt: skip
                    await ws.close(1000, "watchdog: no data")
                    return
                self._data_arrived()
                self.session.received(
                    text if isinstance(text, str) else text.decode(), datetime.now(UTC)
                )
        finally:
            if pinger is not None:
                await stop_pinging(pinger)

    def _data_arrived(self) -> None:
        """Note the data; after a quiet spell, tell the session: what changed in the last
        seconds of a silence is not replayed by the venue."""
        now = time.monotonic()
        quiet_for, self.last_data = now - self.last_data, now
        if self.resumed is None or quiet_for < self.quiet:
            return
        if self._resuming is None or self._resuming.done():
            self.events["resumes"] += 1
            self._resuming = asyncio.create_task(self.resumed())


def _keepalive(frame: str | bytes) -> bool:
    if len(frame) > 16:
        return False
    text = frame.decode() if isinstance(frame, bytes) else frame
    return text.strip() == KEEPALIVE_ANSWER


class Channel:
    """A venue's stream over one :class:`Connection`, as the ingest side reads it."""

    connection: Connection

    @property
    def connected(self) -> bool:
        return self.connection.connected

    @property
    def events(self) -> Counter[str]:
        """connects, reconnects, closed, refused, watchdog_restarts, resumes."""
        return self.connection.events

    async def run(self) -> None:
        """Connect, read and reconnect until cancelled."""
        await self.connection.run()


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


async def stop(task: asyncio.Task[Any]) -> None:
    """Cancel a stream's background task and wait for it to end."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
