"""What the streams have in common: the loop that flushes their rows and follows the hot set, and
the metrics of the price streams."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import NoReturn, Protocol

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.errors import ExporterError
from exporter.ingest.coalesce import Coalescer
from exporter.timing import merged

log = structlog.get_logger("exporter.stream")
RESHARD_SECONDS = 5.0
"""How often a price stream moves its subscription towards the hot set."""
FLUSHES_PER_WINDOW = 4
"""Flushes per coalescing window: an outcome gets at most one row a window, sooner when quiet."""


async def flushing(
    venue: str,
    every: float,
    flush: Callable[[], Awaitable[int]],
    reshard: Callable[[], Awaitable[None]] | None = None,
) -> NoReturn:
    """Until cancelled: follow the hot set (``reshard``, every :data:`RESHARD_SECONDS`) and write
    what the stream gathered every ``every`` seconds. A database outage costs a warning; the
    writer holds the rows (bounded) until it is back."""
    next_reshard = 0.0
    while True:
        if reshard is not None and time.monotonic() >= next_reshard:
            await reshard()
            next_reshard = time.monotonic() + RESHARD_SECONDS
        await asyncio.sleep(every)
        try:
            await flush()
        except ExporterError as error:
            log.warning("stream rows not written", venue=venue, error=str(error))


class PriceStream(Protocol):
    """A venue's price stream: its connections, counts and where its outcomes' prices come from."""

    venue: str
    messages: Counter[str]
    counts: Counter[str]
    rows: Coalescer

    def connections(self) -> list[tuple[str, bool]]: ...
    def subscribed(self) -> int: ...
    def event_total(self, name: str) -> int: ...
    def live(self) -> set[str]: ...
    def rest_polled(self) -> int: ...


class StreamCollector(Collector):
    """The price streams' connections, messages, gaps and stream-to-commit latency."""

    def __init__(self, streams: Sequence[PriceStream]) -> None:
        self.streams = streams

    def collect(self) -> Iterator[Metric]:
        streams = self.streams
        connected = GaugeMetricFamily(
            "movers_websocket_connected",
            "1 while the stream connection is up and subscribed, by venue and connection.",
            labels=["venue", "connection"],
        )
        assets = GaugeMetricFamily(
            "movers_websocket_subscribed_assets",
            "Assets (Kalshi: markets) subscribed on the venue's stream connections.",
            labels=["venue"],
        )
        messages = CounterMetricFamily(
            "movers_websocket_messages",
            "Stream messages received, by type (book, price_change, ticker, trade, ...).",
            labels=["venue", "type"],
        )
        events = {
            "reconnects": CounterMetricFamily(
                "movers_websocket_reconnects",
                "Stream connections opened again after a close or failure.",
                labels=["venue"],
            ),
            "watchdog_restarts": CounterMetricFamily(
                "movers_websocket_watchdog_restarts",
                "Stream connections restarted by the watchdog (no market data).",
                labels=["venue"],
            ),
        }
        gaps = CounterMetricFamily(
            "movers_websocket_gaps",
            "Stream gaps (a reconnect or a sequence gap) closed by a REST re-snapshot.",
            labels=["venue"],
        )
        source = GaugeMetricFamily(
            "movers_price_source_outcomes",
            "Hot-set outcomes by where their prices come from now: stream, or rest (polling, "
            "while their stream connection is down or quiet); each outcome under one source.",
            labels=["venue", "source"],
        )
        for stream in streams:
            venue = stream.venue
            for index, up in stream.connections():
                connected.add_metric([venue, index], 1.0 if up else 0.0)
            assets.add_metric([venue], stream.subscribed())
            for kind, count in sorted(stream.messages.items()):
                messages.add_metric([venue, kind], count)
            for event, family in events.items():
                family.add_metric([venue], stream.event_total(event))
            gaps.add_metric([venue], stream.counts["gaps"])
            source.add_metric([venue, "stream"], len(stream.live()))
            source.add_metric([venue, "rest"], stream.rest_polled())
        yield from (connected, assets, messages, *events.values(), gaps, source)
        yield from merged(stream.rows.latency for stream in streams)
