"""The exporter's own health as Prometheus metrics, and the HTTP endpoints that serve them.

Everything is produced at scrape time by one custom collector over the live state (jobs, clients,
writer, parse rejects) and a cache of database figures refreshed by a job, so label sets that go
away stop being exported. The registry is passed in; nothing is global.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter.alerts import WEBHOOK_PATH

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from exporter.alerts import AlertHistory
    from exporter.service import Ingest
    from exporter.storage.writer import Writer

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READY_WITHIN = 600.0
"""/readyz wants a successful job run this recent (seconds)."""
TITLE_CHARS, OUTCOME_CHARS, URL_CHARS = 200, 100, 300
"""Label values of the info metric are cut to these lengths (a longer URL is left out), so the
scrape stays within ``label_value_length_limit`` (1,024 bytes in prometheus/prometheus.yml)."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class DatabaseFigures:
    """Figures read from the database by a job, served from here at scrape time."""

    up: bool = False
    checked_at: float | None = None
    markets: dict[tuple[str, str], int] = field(default_factory=dict)
    """``(venue, status)`` -> markets stored."""

    async def refresh(self, pool: AsyncConnectionPool[Any]) -> dict[str, int]:
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT venue, status, count(*) FROM markets GROUP BY venue, status"
                )
                rows = await cur.fetchall()
        except Exception:
            self.up = False
            self.checked_at = time.time()
            raise
        self.markets = {(venue, status): count for venue, status, count in rows}
        self.up = True
        self.checked_at = time.time()
        return {"markets": sum(self.markets.values())}


class ExporterCollector(Collector):
    def __init__(
        self,
        ingest: Ingest,
        writer: Writer,
        database: DatabaseFigures,
        history: AlertHistory | None = None,
    ) -> None:
        self.ingest = ingest
        self.writer = writer
        self.database = database
        self.history = history

    def collect(self) -> Iterator[Metric]:
        yield from self._freshness()
        yield from self._requests()
        yield from self._rows()
        yield from self._jobs()
        yield from self._venues()
        yield from self._database()
        yield from self._movers()
        yield from self._alerts()
        yield from self._streams()

    def _freshness(self) -> Iterable[Metric]:
        for table, name in (("snapshots", "snapshot"), ("trades", "trade")):
            family = GaugeMetricFamily(
                f"movers_last_{name}_timestamp_seconds",
                f"Time of the newest {name} row committed, by venue (time() - this = ingest lag).",
                labels=["venue"],
            )
            for (kind, venue), moment in sorted(self.writer.newest.items()):
                if kind == table:
                    family.add_metric([venue], moment.timestamp())
            yield family
        discovery = GaugeMetricFamily(
            "movers_last_discovery_timestamp_seconds",
            "When the venue's discovery last completed.",
            labels=["venue"],
        )
        for job, state in sorted(self.ingest.jobs.states.items()):
            if job.endswith("_discovery") and state.last_success is not None:
                discovery.add_metric([job.removesuffix("_discovery")], state.last_success)
        yield discovery

    def _requests(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "movers_venue_requests",
            "Venue responses by endpoint family and status: 2xx, 4xx, 429, 5xx, timeout, "
            "connection_error, invalid_body (each attempt, retries included).",
            labels=["venue", "endpoint", "status"],
        )
        events = {
            event: CounterMetricFamily(f"movers_venue_{name}", doc, labels=["venue", "endpoint"])
            for event, name, doc in (
                ("retry", "retries", "Venue requests sent again after a retryable failure."),
                ("give_up", "give_ups", "Venue requests that failed after their retries."),
                ("slow", "slow_responses", "Venue responses slower than slow_response."),
            )
        }
        for client in self.ingest.clients:
            http = client.http
            for (family, status), count in sorted(http.stats.items()):
                requests.add_metric([http.venue, family, status], count)
            for (family, event), count in sorted(http.events.items()):
                events[event].add_metric([http.venue, family], count)
        yield requests
        yield from events.values()
        durations = [client.http.durations for client in self.ingest.clients]
        if durations:
            yield durations[0].family(
                "movers_venue_request_duration_seconds",
                "Venue request latency per attempt, by endpoint family.",
                ["venue", "endpoint"],
                *durations[1:],
            )
        parse = CounterMetricFamily(
            "movers_parse_errors",
            "Malformed venue records skipped, by venue and record kind.",
            labels=["venue", "kind"],
        )
        for (venue, kind), count in sorted(self.ingest.rejects.counts.items()):
            parse.add_metric([venue, kind], count)
        yield parse

    def _rows(self) -> Iterable[Metric]:
        rows = CounterMetricFamily(
            "movers_rows",
            "Rows offered to the writer by table and outcome: written, duplicate, unchanged "
            "(change-only storage), rejected.",
            labels=["table", "venue", "outcome", "reason"],
        )
        for (table, venue, outcome), count in sorted(self.writer.totals.items()):
            kind, _, reason = outcome.partition(":")
            rows.add_metric([table, venue, kind, reason], count)
        yield rows
        backlog = self.writer.backlog
        held = GaugeMetricFamily(
            "movers_buffer_rows",
            "Rows held in memory while the database is unreachable, by table.",
            labels=["table"],
        )
        dropped = CounterMetricFamily(
            "movers_buffer_dropped_rows",
            "Rows dropped because the outage buffer was full (outage_buffer_rows), by table.",
            labels=["table"],
        )
        for table in ("snapshots", "trades"):
            held.add_metric([table], backlog.rows[table])
            dropped.add_metric([table], backlog.dropped[table])
        yield held
        yield dropped
        yield GaugeMetricFamily(
            "movers_buffer_capacity_rows",
            "Rows the outage buffer holds at most.",
            value=backlog.limit,
        )
        yield self.writer.latency.family(
            "movers_database_write_duration_seconds",
            "Latency of one insert statement (up to write_batch_rows rows), by table.",
            ["table"],
        )

    def _jobs(self) -> Iterable[Metric]:
        runs = CounterMetricFamily(
            "movers_job_runs", "Job runs by outcome (ok, failed).", labels=["job_name", "outcome"]
        )
        last = GaugeMetricFamily(
            "movers_job_last_success_timestamp_seconds",
            "When the job last succeeded.",
            labels=["job_name"],
        )
        duration = GaugeMetricFamily(
            "movers_job_last_duration_seconds",
            "How long the job's last successful run took.",
            labels=["job_name"],
        )
        failing = GaugeMetricFamily(
            "movers_job_failing", "1 while the job's latest run failed.", labels=["job_name"]
        )
        for job, state in sorted(self.ingest.jobs.states.items()):
            for outcome, count in sorted(state.runs.items()):
                runs.add_metric([job, outcome], count)
            if state.last_success is not None:
                last.add_metric([job], state.last_success)
            if state.last_duration is not None:
                duration.add_metric([job], state.last_duration)
            failing.add_metric([job], 1.0 if state.failing else 0.0)
        yield from (runs, last, duration, failing)

    def _venues(self) -> Iterable[Metric]:
        sweep = GaugeMetricFamily(
            "movers_sweep_duration_seconds",
            "Duration of the venue's last full price sweep.",
            labels=["venue"],
        )
        kalshi = self.ingest.kalshi
        for venue, ingest in (("polymarket", self.ingest.polymarket), ("kalshi", kalshi)):
            if ingest is not None and ingest.last_sweep_seconds is not None:
                sweep.add_metric([venue], ingest.last_sweep_seconds)
        yield sweep
        unmapped = CounterMetricFamily(
            "movers_unmapped_category_labels",
            "Venue tags or series categories that mapped to no category (fell back to Other).",
            labels=["venue"],
        )
        totals: dict[str, int] = {}
        for (venue, _), count in self.ingest.categories.unmapped.items():
            totals[venue] = totals.get(venue, 0) + count
        for venue, count in sorted(totals.items()):
            unmapped.add_metric([venue], count)
        yield unmapped
        hot = GaugeMetricFamily("movers_hot_markets", "Markets in the hot set.", labels=["venue"])
        for venue, ingest in (("polymarket", self.ingest.polymarket), ("kalshi", kalshi)):
            if ingest is not None:
                hot.add_metric([venue], len(ingest.hot))
        yield hot

    def _database(self) -> Iterable[Metric]:
        db = self.database
        yield GaugeMetricFamily(
            "movers_database_up",
            "1 when the last database check succeeded.",
            value=1.0 if db.up else 0.0,
        )
        markets = GaugeMetricFamily(
            "movers_markets", "Markets stored, by venue and status.", labels=["venue", "status"]
        )
        for (venue, status), count in sorted(db.markets.items()):
            markets.add_metric([venue, status], count)
        yield markets

    def _movers(self) -> Iterable[Metric]:
        view = self.ingest.movers.view
        move = GaugeMetricFamily(
            "movers_market_move_ratio",
            "Price move over the window as a probability difference (0.12 = +12 pp), for the "
            "top movers with |move| >= movers.export.min_abs_move_pp, at most "
            "movers.export.max_series per window.",
            labels=["venue", "market_id", "window", "category"],
        )
        price = GaugeMetricFamily(
            "movers_market_price_ratio",
            "Latest price (probability 0..1) of each market among the exported movers.",
            labels=["venue", "market_id"],
        )
        info = InfoMetricFamily(
            "movers_market",
            "Title, outcome and link of each market among the exported movers (join with "
            "group_left on venue and market_id).",
            labels=["venue", "market_id", "category", "title", "outcome", "url"],
        )
        seen: set[str] = set()
        for m in view.movers:
            move.add_metric([m.venue, m.market_id, m.window_label, m.category], m.move_pp / 100)
            if m.market_id not in seen:
                seen.add(m.market_id)
                price.add_metric([m.venue, m.market_id], m.price_now)
                labels = [
                    m.venue,
                    m.market_id,
                    m.category,
                    _cut(m.title, TITLE_CHARS),
                    _cut(m.outcome, OUTCOME_CHARS),
                    m.url if m.url and len(m.url) <= URL_CHARS else "",
                ]
                info.add_metric(labels, {})
        yield from (move, price, info)
        markets = GaugeMetricFamily(
            "movers_category_markets",
            "Markets ranked in the category and window (open, passing the filters).",
            labels=["window", "category"],
        )
        moved = GaugeMetricFamily(
            "movers_category_moved_markets",
            "Markets of the category whose |move| over the window reached "
            "movers.category_threshold_pp.",
            labels=["window", "category"],
        )
        mean = GaugeMetricFamily(
            "movers_category_mean_abs_move_ratio",
            "Volume-weighted mean |move| of the category's markets over the window "
            "(probability difference).",
            labels=["window", "category"],
        )
        for c in view.categories:
            markets.add_metric([c.window_label, c.category], c.markets)
            moved.add_metric([c.window_label, c.category], c.moved)
            mean.add_metric([c.window_label, c.category], c.mean_abs_move_pp / 100)
        yield from (markets, moved, mean)
        if view.computed_at is not None:
            yield GaugeMetricFamily(
                "movers_movers_computed_timestamp_seconds",
                "When the movers shown were computed.",
                value=view.computed_at.timestamp(),
            )

    def _alerts(self) -> Iterable[Metric]:
        if self.history is None:
            return
        requests = CounterMetricFamily(
            "movers_alert_webhook_requests",
            "Alertmanager notifications posted to the alert-history webhook, by outcome: stored, "
            "invalid, unauthorized, unavailable (database down: Alertmanager retries).",
            labels=["outcome"],
        )
        for outcome, count in sorted(self.history.requests.items()):
            requests.add_metric([outcome], count)
        alerts = CounterMetricFamily(
            "movers_alert_notifications",
            "Alerts stored in the alert history, by status (firing, resolved).",
            labels=["status"],
        )
        for status, count in sorted(self.history.notifications.items()):
            alerts.add_metric([status], count)
        yield from (requests, alerts)

    def _trades_stream(self) -> Iterable[Metric]:
        stream = self.ingest.trades_stream
        if stream is None:
            return
        yield GaugeMetricFamily(
            "movers_trades_stream_connected",
            "1 while the RTDS trades stream (Polymarket) is connected and subscribed.",
            value=1.0 if stream.connected else 0.0,
        )
        trades = CounterMetricFamily(
            "movers_trades_stream_trades",
            "RTDS trades by outcome: received, kept (outcomes discovery knows), written (new "
            "rows; the rest were already stored by the Data API job).",
            labels=["outcome"],
        )
        for outcome, key in (("received", "trades"), ("kept", "kept"), ("written", "written")):
            trades.add_metric([outcome], stream.counts[key])
        yield trades

    def _streams(self) -> Iterable[Metric]:
        yield from self._trades_stream()
        streams = self.ingest.streams()
        if not streams:
            return
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
        first, *rest = [stream.rows.latency for stream in streams]
        yield first.family(
            "movers_stream_commit_latency_seconds",
            "From receiving a stream update to committing its row (coalescing included).",
            ["venue"],
            *rest,
        )


def build_registry(
    ingest: Ingest,
    writer: Writer,
    database: DatabaseFigures,
    history: AlertHistory | None = None,
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(ingest, writer, database, history))
    return registry


def metrics_app(
    registry: CollectorRegistry,
    ingest: Ingest,
    database: DatabaseFigures,
    history: AlertHistory | None = None,
) -> web.Application:
    """``/metrics``, ``/healthz`` (the process answers), ``/readyz`` (the database answered
    its last check and some job succeeded recently) and, with ``history``, the alert-history
    webhook ``POST /alerts/webhook``."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"content-type": CONTENT_TYPE})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        now = time.time()
        recent = [
            job
            for job, state in ingest.jobs.states.items()
            if state.last_success is not None and now - state.last_success < READY_WITHIN
        ]
        ready = database.up and (bool(recent) or not ingest.clients)
        body = {"database": database.up, "recent_jobs": sorted(recent)}
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if history is not None:
        app.router.add_post(WEBHOOK_PATH, history.handle)
    return app
