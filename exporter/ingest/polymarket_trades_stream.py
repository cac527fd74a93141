"""Polymarket trades from the real-time data socket (RTDS, API_NOTES 1.8), off by default.

Subscribes ``activity``/``trades`` (the global trade firehose), sends the text ``PING`` every
``ping_every`` (5 s), and keeps the trades of the outcomes discovery knows. A trade's payload is
the Data API's trade row (``timestamp`` in seconds; the envelope's is in milliseconds), so it
parses into the same trade id and the ``polymarket_trades`` job's rows deduplicate against it.
Reconnects use the websockets library's reconnecting ``connect``; trades missed while
disconnected are the Data API job's to fill. ``clob_market`` topics are dead and never used.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from exporter.config import PolymarketConfig
from exporter.errors import ExporterError, ParseError
from exporter.ingest.common import Rejects
from exporter.model import Trade, native_of
from exporter.normalize.polymarket import parse_trade
from exporter.venues.polymarket.stream import send_pings, stop_pinging

if TYPE_CHECKING:
    from exporter.ingest.polymarket import PolymarketIngest

log = structlog.get_logger("exporter.stream")
SUBSCRIBE = orjson.dumps(
    {"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]}
).decode()
FLUSH_SECONDS = 1.0


def parse_rtds(text: str) -> Trade | None:
    """The trade of one RTDS frame; None for other topics and for ``PONG``.

    Trimmed real frame (rtds_activity_trades_2026-08-19.jsonl)::

        {"connection_id": "gXse…", "topic": "activity", "type": "trades",
         "timestamp": 1787102287053, "payload": {"asset": "7255…7074", "conditionId": "0x1d87…",
         "outcomeIndex": 1, "price": 0.26, "proxyWallet": "0x510F…", "side": "BUY",
         "size": 2.7027, "timestamp": 1787102287, "transactionHash": "0xb6ac…"}}
    """
    if text.strip() == "PONG":
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ParseError("polymarket", "trade", f"RTDS frame is not JSON: {text!r:.60}") from None
    if not isinstance(message, dict):
        raise ParseError("polymarket", "trade", f"RTDS frame is not an object: {text!r:.60}")
    if message.get("topic") != "activity" or message.get("type") not in ("trades",):
        return None
    return parse_trade(message.get("payload"))


class PolymarketTradesStreamer(Collector):
    """The RTDS trades of known outcomes, written in batches; :meth:`collect` reports it."""

    def __init__(
        self,
        config: PolymarketConfig,
        ingest: PolymarketIngest,
        rejects: Rejects,
        *,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.config = config.trades_stream
        self.url = config.rtds_url
        self.ingest = ingest
        self.rejects = rejects
        self.reconnect_delays = reconnect_delays
        self.pending: list[Trade] = []
        self.connected = False
        self.counts: Counter[str] = Counter()
        """connects, trades (received), kept (of known outcomes), written."""

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "movers_trades_stream_connected",
            "1 while the RTDS trades stream (Polymarket) is connected and subscribed.",
            value=1.0 if self.connected else 0.0,
        )
        trades = CounterMetricFamily(
            "movers_trades_stream_trades",
            "RTDS trades by outcome: received, kept (outcomes discovery knows), written (new "
            "rows; the rest were already stored by the Data API job).",
            labels=["outcome"],
        )
        for outcome, key in (("received", "trades"), ("kept", "kept"), ("written", "written")):
            trades.add_metric([outcome], self.counts[key])
        yield trades

    def _known(self) -> set[str]:
        return {t for k in self.ingest.known.values() for t in k.tokens}

    async def _connections(self) -> None:
        options: dict[str, Any] = {"ping_interval": None, "max_size": 2**22, "open_timeout": 10}
        if self.reconnect_delays is not None:
            options["reconnect_delays"] = self.reconnect_delays
        async for ws in connect(self.url, **options):
            self.counts["connects"] += 1
            try:
                await self._serve(ws)
            except ConnectionClosed:
                log.info("trades stream closed")
            finally:
                self.connected = False

    async def _serve(self, ws: ClientConnection) -> None:
        await ws.send(SUBSCRIBE)
        self.connected = True
        pinger = asyncio.create_task(send_pings(ws, self.config.ping_every.total_seconds()))
        try:
            known = self._known()
            while True:
                try:
                    async with asyncio.timeout(self.config.silence.total_seconds()):
                        text = await ws.recv()
                except TimeoutError:
                    self.counts["watchdog_restarts"] += 1
                    await ws.close(1000, "watchdog: no trades")
                    return
                try:
                    trade = parse_rtds(text if isinstance(text, str) else text.decode())
                except ParseError as error:
                    self.rejects.add(error, str(text)[:200])
                    continue
                if trade is None:
                    continue
                self.counts["trades"] += 1
                token = native_of(trade.outcome_id)
                if token not in known:
                    known = self._known()  # discovery may have found it since
                    if token not in known:
                        continue
                self.counts["kept"] += 1
                self.pending.append(trade)
        finally:
            await stop_pinging(pinger)

    async def flush(self, *, force: bool = False) -> int:
        if not self.pending:
            return 0
        batch, self.pending = self.pending, []
        result = await self.ingest.writer.write_trades(batch)
        self.counts["written"] += result.written
        return result.written

    async def run(self) -> None:
        connection = asyncio.create_task(self._connections())
        try:
            while True:
                await asyncio.sleep(FLUSH_SECONDS)
                try:
                    await self.flush()
                except ExporterError as error:
                    log.warning("stream trades not written", error=str(error))
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connection
