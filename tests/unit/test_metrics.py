"""Prometheus metrics: each component's collector against a fresh registry, and the endpoints."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from exporter.config import RetryConfig, Settings, validate_settings
from exporter.endpoints import metrics_app
from exporter.errors import ParseError, VenueUnavailable
from exporter.ingest.common import Jobs
from exporter.metrics import build_registry
from exporter.service import Ingest, build_ingest
from exporter.storage.db import create_pool
from exporter.storage.health import DatabaseFigures
from exporter.storage.migrate import Mode
from exporter.storage.writer import Writer
from exporter.venues.http import HttpCollector, VenueHttp, http_client
from tests.support.running import every_metric

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
"""What Prometheus 3 sends by default (scrape_protocols)."""


def _offline(overrides: dict[str, Any] | None = None) -> tuple[Settings, Writer, Ingest]:
    """Settings, a writer and the composition root's components over a pool never opened."""
    settings = validate_settings(
        {"venues": {"polymarket": {"gamma_url": "http://127.0.0.1:9"}}, **(overrides or {})}
    )
    pool = create_pool(settings.database)  # never opened: nothing here touches a database
    writer = Writer.from_settings(pool, Mode.PLAIN, settings)
    return settings, writer, build_ingest(settings, writer)


def _documented() -> set[str]:
    """The metric names the README's metrics table lists."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Metrics and health", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `movers_")]
    return {name for row in rows for name in re.findall(r"`(movers_[a-z_]+)`", row.split("|")[1])}


async def test_every_component_registers_its_collector_and_the_readme_lists_each_metric() -> None:
    assert await every_metric() == _documented()


def test_the_movers_refresh_and_the_background_steps_share_the_process_turns() -> None:
    """One process's rollups and aggregate refreshes take their turns after its own movers
    refresh (storage/turns.py): the composition root hands them one Turns."""
    _, _, ingest = _offline()
    assert ingest.movers.refresher.turns is ingest.turns
    assert ingest.backfills
    assert all(backfill.store.turns is ingest.turns for backfill, _, _ in ingest.backfills)


def test_a_metric_name_two_components_export_fails_at_start() -> None:
    with pytest.raises(ValueError, match=r"Duplicated timeseries.*movers_job_runs"):
        build_registry([Jobs(), Jobs()])


async def test_each_collector_reports_its_components_live_state_and_drops_vanished_labels() -> None:
    _, writer, ingest = _offline({"venues": {"kalshi": {"enabled": False}}})
    database = DatabaseFigures()
    database.up, database.markets = True, {("polymarket", "open"): 12}
    registry = build_registry([*ingest.collectors(), database])
    writer.newest[("snapshots", "polymarket")] = T0
    writer.newest[("trades", "kalshi")] = T0
    writer.totals[("snapshots", "polymarket", "written")] += 7
    writer.totals[("snapshots", "polymarket", "rejected:price_out_of_range")] += 2
    ingest.rejects.add(ParseError("polymarket", "market", "broken"), {})

    async def fail() -> None:
        raise VenueUnavailable("polymarket", "/books", "HTTP 503")

    async def found() -> None:
        pass

    await ingest.jobs.run("polymarket_hot", fail)
    await ingest.jobs.run("polymarket_discovery", found)
    value = registry.get_sample_value
    assert (
        value("movers_last_snapshot_timestamp_seconds", {"venue": "polymarket"}) == T0.timestamp()
    )
    assert value("movers_last_trade_timestamp_seconds", {"venue": "kalshi"}) == T0.timestamp()
    written = {"table": "snapshots", "venue": "polymarket", "outcome": "written", "reason": ""}
    assert value("movers_rows_total", written) == 7
    rejected = {"table": "snapshots", "venue": "polymarket", "outcome": "rejected",
                "reason": "price_out_of_range"}  # fmt: skip
    assert value("movers_rows_total", rejected) == 2
    assert value("movers_parse_errors_total", {"venue": "polymarket", "kind": "market"}) == 1
    assert value("movers_job_runs_total", {"job_name": "polymarket_hot", "outcome": "failed"}) == 1
    assert value("movers_job_failing", {"job_name": "polymarket_hot"}) == 1
    assert value("movers_last_discovery_timestamp_seconds", {"venue": "polymarket"})
    assert value("movers_hot_markets", {"venue": "polymarket"}) == 0
    assert value("movers_markets", {"venue": "polymarket", "status": "open"}) == 12
    assert value("movers_database_up") == 1
    assert value("movers_buffer_capacity_rows") == writer.backlog.limit
    # Label sets that leave the state leave the output at the next scrape.
    database.markets = {}
    assert value("movers_markets", {"venue": "polymarket", "status": "open"}) is None
    names = {f.name for f in registry.collect()}
    assert all(n.startswith("movers_") for n in names)
    assert not any(s.name.endswith("_created") for f in registry.collect() for s in f.samples)
    await ingest.aclose()


async def test_venue_requests_are_counted_and_timed_per_venue_in_one_family() -> None:
    answers = iter([429, 200, 503, 503, 503])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), json=[])

    retry = RetryConfig.model_validate({"attempts": 3, "wait_initial": 0.001, "wait_max": 0.001})
    clients = [
        VenueHttp(venue, {}, share=1.0, window=10.0, retry=retry, slow=30.0)
        for venue in ("polymarket", "kalshi")
    ]
    registry = build_registry([HttpCollector(clients)])
    transport = httpx.MockTransport(handler)
    async with http_client("http://venue.test", 5.0, transport) as client:
        await clients[0].request(client, "clob_books", "POST", "/books", body=[])
        with pytest.raises(VenueUnavailable):
            await clients[1].request(client, "markets", "GET", "/markets")
    value = registry.get_sample_value
    books = {"venue": "polymarket", "endpoint": "clob_books"}
    markets = {"venue": "kalshi", "endpoint": "markets"}
    assert value("movers_venue_requests_total", {**books, "status": "429"}) == 1
    assert value("movers_venue_requests_total", {**books, "status": "2xx"}) == 1
    assert value("movers_venue_retries_total", books) == 1
    assert value("movers_venue_requests_total", {**markets, "status": "5xx"}) == 3
    assert value("movers_venue_give_ups_total", markets) == 1
    assert value("movers_venue_request_duration_seconds_count", books) == 2
    assert value("movers_venue_request_duration_seconds_count", markets) == 3


async def test_metrics_are_served_in_the_format_the_scraper_asks_for() -> None:
    jobs, database = Jobs(), DatabaseFigures()
    registry = build_registry([jobs, database])
    app = metrics_app(registry, jobs, database, venues=False)
    async with TestClient(TestServer(app)) as client:
        plain = await client.get("/metrics")
        assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert "movers_database_up 0.0" in await plain.text()
        prometheus = await client.get("/metrics", headers={"Accept": PROMETHEUS_3_ACCEPT,
                                                           "Accept-Encoding": "gzip"})  # fmt: skip
        assert prometheus.headers["Content-Type"].startswith("application/openmetrics-text")
        assert prometheus.headers["Content-Encoding"] == "gzip"
        assert (await prometheus.text()).endswith("# EOF\n")
        assert (await client.get("/readyz")).status == 503  # the database never answered
        database.up = True
        assert (await client.get("/readyz")).status == 200  # no venue enabled: nothing to wait for
