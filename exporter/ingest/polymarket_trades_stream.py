"""Polymarket trades from the real-time data socket (RTDS, API_NOTES 1.8), off by default.

The :class:`~exporter.venues.polymarket.stream.TradesFeed` subscribes ``activity``/``trades`` (the
global trade firehose); this keeps the trades of the outcomes discovery knows. A trade's payload is
the Data API's trade row (``timestamp`` in seconds; the envelope's is in milliseconds), so it
parses into the same trade id and the ``polymarket_trades`` job's rows deduplicate against it.
Trades missed while disconnected are the Data API job's to fill. ``clob_market`` topics are
dead and never used.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from datetime import datetime

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import PolymarketConfig
from exporter.errors import ParseError
from exporter.ingest.common import Rejects
from exporter.ingest.hot import HotSet
from exporter.ingest.streams import flushing
from exporter.model import Trade, native_of
from exporter.normalize.polymarket_stream import parse_rtds
from exporter.storage.writer import Writer
from exporter.venues.polymarket.stream import TradesFeed
from exporter.venues.stream import stop

log = structlog.get_logger("exporter.stream")
FLUSH_SECONDS = 1.0


class PolymarketTradesStreamer(Collector):
    """The RTDS trades of known outcomes, written in batches; :meth:`collect` reports it."""

    def __init__(
        self,
        config: PolymarketConfig,
        hot: HotSet,
        writer: Writer,
        rejects: Rejects,
        *,
        reconnect_delays: Callable[[], Generator[float]] | None = None,
    ) -> None:
        self.hot = hot
        self.writer = writer
        self.rejects = rejects
        self.feed = TradesFeed(
            config.rtds_url, self.on_frame,
            silence=config.trades_stream.silence.total_seconds(),
            ping_every=config.trades_stream.ping_every.total_seconds(),
            reconnect_delays=reconnect_delays,
        )  # fmt: skip
        self.pending: list[Trade] = []
        self.counts: Counter[str] = Counter()
        """trades (received), kept (of known outcomes), written."""

    @property
    def connected(self) -> bool:
        return self.feed.connected

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

    def on_frame(self, text: str, received: datetime) -> None:
        try:
            trade = parse_rtds(text)
        except ParseError as error:
            self.rejects.add(error, text[:200])
            return
        if trade is None:
            return
        self.counts["trades"] += 1
        if self.hot.market_of(native_of(trade.outcome_id)) is None:
            return  # not an open market discovery knows (as of its last run)
        self.counts["kept"] += 1
        self.pending.append(trade)

    async def flush(self, *, force: bool = False) -> int:
        if not self.pending:
            return 0
        batch, self.pending = self.pending, []
        result = await self.writer.write_trades(batch)
        self.counts["written"] += result.written
        return result.written

    async def run(self) -> None:
        connection = asyncio.create_task(self.feed.run())
        try:
            await flushing("polymarket", FLUSH_SECONDS, self.flush)
        finally:
            await stop(connection)
