"""A TCP pass-through on a thread of its own that notes when each HTTP request reaches it: where a
venue counts requests against its rate limits (the simulator notes them only once its event loop
gets to them, later when it is busy computing a large answer)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.servers import free_port

_METHODS = (b"GET ", b"POST ", b"PUT ", b"DELETE ")


class Tap:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.arrivals: list[tuple[float, str]] = []
        """``(time.monotonic(), request line)`` of each request, in arrival order."""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._open: set[asyncio.StreamWriter] = set()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.run_until_complete(server.wait_closed())
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._open |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, note: bool) -> None:
            try:
                while chunk := await src.read(65536):
                    if note and chunk.startswith(_METHODS):
                        line = chunk.split(b"\r\n", 1)[0].decode(errors="replace")
                        self.arrivals.append((time.monotonic(), line))
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        async def close() -> None:
            for writer in self._open:
                writer.close()
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(close(), self._loop)
        self._thread.join(10)


@contextmanager
def tapped(url: str) -> Iterator[tuple[str, Tap]]:
    """``url`` (``http://host:port/…``) rewritten through a tap, and the tap."""
    scheme, rest = url.split("://", 1)
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    tap = Tap(host, int(port))
    tap.start()
    try:
        yield f"{scheme}://127.0.0.1:{tap.port}/{path}", tap
    finally:
        tap.stop()
