"""Prometheus metrics: the collector against a fresh registry, and `movers run` end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from exporter.config import validate_settings
from exporter.errors import ParseError, VenueUnavailable
from exporter.metrics import DatabaseFigures, build_registry
from exporter.model import Snapshot, Trade, Venue
from exporter.service import build_ingest
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.storage.db import create_pool
from exporter.storage.migrate import Mode
from exporter.storage.writer import Writer
from tests.conftest import Database
from tests.running import Exporter, key

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


async def test_the_collector_reports_live_state_and_drops_vanished_labels() -> None:
    settings = validate_settings(
        {
            "venues": {
                "polymarket": {"gamma_url": "http://127.0.0.1:9"},
                "kalshi": {"enabled": False},
            }
        }
    )
    pool = create_pool(settings.database)  # never opened: nothing here touches a database
    writer = Writer.from_settings(pool, Mode.PLAIN, settings)
    ingest = build_ingest(settings, writer)
    database = DatabaseFigures(up=True, markets={("polymarket", "open"): 12})
    registry = build_registry(ingest, writer, database)

    writer._note_newest("snapshots", [Snapshot(time=T0, outcome_id="polymarket:1", price=0.5)])
    writer._note_newest(
        "trades",
        [
            Trade(
                time=T0, outcome_id="kalshi:X", venue=Venue.KALSHI, trade_id="t", price=0.5, size=1
            )
        ],
    )
    writer.totals[("snapshots", "polymarket", "written")] += 7
    writer.totals[("snapshots", "polymarket", "rejected:price_out_of_range")] += 2
    ingest.rejects.add(ParseError("polymarket", "market", "broken"), {})
    assert ingest.polymarket is not None
    ingest.polymarket.client.http.stats[("clob_books", "429")] += 3

    async def fail() -> None:
        raise VenueUnavailable("polymarket", "/books", "HTTP 503")

    await ingest.jobs.run("polymarket_hot", fail)
    value = registry.get_sample_value
    assert (
        value("movers_last_snapshot_timestamp_seconds", {"venue": "polymarket"}) == T0.timestamp()
    )
    assert value("movers_last_trade_timestamp_seconds", {"venue": "kalshi"}) == T0.timestamp()
    assert (
        value(
            "movers_rows_total",
            {"table": "snapshots", "venue": "polymarket", "outcome": "written", "reason": ""},
        )
        == 7
    )
    rejected = {"table": "snapshots", "venue": "polymarket", "outcome": "rejected",
                "reason": "price_out_of_range"}  # fmt: skip
    assert value("movers_rows_total", rejected) == 2
    assert value("movers_parse_errors_total", {"venue": "polymarket", "kind": "market"}) == 1
    assert value("movers_venue_requests_total", {"venue": "polymarket", "endpoint": "clob_books",
                                                 "status": "429"}) == 3  # fmt: skip
    assert value("movers_job_runs_total", {"job_name": "polymarket_hot", "outcome": "failed"}) == 1
    assert value("movers_job_failing", {"job_name": "polymarket_hot"}) == 1
    assert value("movers_markets", {"venue": "polymarket", "status": "open"}) == 12
    assert value("movers_database_up") == 1
    # Label sets that leave the state leave the output at the next scrape.
    database.markets = {}
    assert value("movers_markets", {"venue": "polymarket", "status": "open"}) is None
    names = {f.name for f in registry.collect()}
    assert all(n.startswith("movers_") for n in names)
    assert not any(s.name.endswith("_created") for f in registry.collect() for s in f.samples)
    await ingest.aclose()


@pytest.mark.db
async def test_movers_run_serves_metrics_health_and_readiness(pg: Database, tmp_path: Path) -> None:
    scenario = load_scenario({"seed": 14, "universe": {"polymarket": 40, "kalshi": 60}})
    async with Simulator(scenario, clock=ManualClock(T0)) as sim:
        sim.advance(600)
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["kalshi"]["requests_per_second"] = 50
        exporter = Exporter(pg.url, {"venues": venues}, tmp_path)
        await exporter.start()
        try:
            samples = await exporter.wait_for(
                lambda s: (
                    all(
                        s.get(key("movers_job_runs_total", job_name=f"{v}_discovery", outcome="ok"))
                        for v in ("polymarket", "kalshi")
                    )
                    and key("movers_last_snapshot_timestamp_seconds", venue="kalshi") in s
                ),
                30,
                "both discoveries and Kalshi prices",
            )
            health = await exporter.client.get("/healthz")
            ready = await exporter.client.get("/readyz")
            assert health.status_code == 200
            assert ready.status_code == 200, ready.text
            assert samples[key("movers_database_up")] == 1
            for venue in ("polymarket", "kalshi"):
                stamp = samples[key("movers_last_snapshot_timestamp_seconds", venue=venue)]
                assert abs(stamp - datetime.now(UTC).timestamp()) < 120
                assert samples[key("movers_last_discovery_timestamp_seconds", venue=venue)]
            assert samples[key("movers_markets", status="open", venue="kalshi")] > 0
            assert len(samples) < 1000
        finally:
            code, err, _ = await exporter.stop()
        assert code == 0, err[-2000:]


FAMILIES = {
    "polymarket": ("gamma_events", "gamma_markets", "clob_books", "data_trades"),
    "kalshi": ("series", "events", "markets", "markets_trades"),
}
STATUSES = ("2xx", "4xx", "429", "5xx", "timeout", "connection_error", "invalid_body")


@pytest.mark.db
async def test_exported_series_stay_under_a_thousand_whatever_the_universe(pg: Database) -> None:
    """60,000 outcomes, every one moving in every window, plus every request family, status,
    job and category in use at once: the output stays bounded."""
    settings = pg.settings()
    from exporter.categories import load_categories
    from exporter.storage.db import prepare_schema

    report = prepare_schema(settings)
    categories = load_categories().taxonomy
    with pg.connect() as conn:
        conn.execute(
            """
            INSERT INTO markets (market_id, venue, native_id, title, category, status, url,
                                 volume_24h, first_seen, last_seen)
            SELECT v || ':m' || i, v, 'm' || i, 'Market ' || i, (%(cats)s::text[])[1 + i %% %(n)s],
                   'open', 'https://example.test/' || i, 10000, now(), now()
            FROM generate_series(1, 30000) i, unnest(ARRAY['polymarket', 'kalshi']) v
            """,
            {"cats": categories, "n": len(categories)},
        )
        conn.execute(
            """
            INSERT INTO outcomes (outcome_id, market_id, venue, native_id, name, position,
                                  first_seen, last_seen)
            SELECT market_id || '-yes', market_id, venue, native_id, 'Yes', 0, now(), now()
            FROM markets
            """
        )
        conn.execute(
            """
            INSERT INTO snapshots (time, outcome_id, price, bid, ask)
            SELECT now() - t, outcome_id, p, p - 0.01, p + 0.01
            FROM outcomes,
                 (VALUES (interval '24 hours 30 minutes', 0.2), (interval '70 minutes', 0.2),
                         (interval '50 minutes', 0.2),
                         (interval '10 seconds', 0.6))
                     AS s (t, p)
            """
        )
    pool = create_pool(settings.database)
    await pool.open(wait=True)
    try:
        writer = Writer.from_settings(pool, report.mode, settings)
        ingest = build_ingest(settings, writer)
        result = await ingest.movers.run()
        assert result["movers"] >= 4 * 2 * len(categories) * settings.movers.keep
        for client in ingest.clients:
            venue = client.http.venue
            for family in FAMILIES[venue]:
                for status in STATUSES:
                    client.http.stats[(family, status)] += 1
                for event in ("retry", "give_up", "slow"):
                    client.http.events[(family, event)] += 1
                client.http.durations.observe((venue, family), 0.2)
        for name in [n for n, _, _ in ingest.schedule(settings)] + ["movers_refresh"]:
            await ingest.jobs.run(name, lambda: asyncio.sleep(0))
        database = DatabaseFigures()
        await database.refresh(pool)
        registry = build_registry(ingest, writer, database)
        text = generate_latest(registry).decode()
        series = [line for line in text.splitlines() if line and not line.startswith("#")]
        moves = [line for line in series if line.startswith("movers_market_move_ratio")]
        assert len(moves) == len(settings.movers.windows) * settings.movers.export.max_series
        assert len(series) < 1000, len(series)
        await ingest.aclose()
    finally:
        await pool.close()
