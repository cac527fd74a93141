"""`movers run` serving its metrics, health and readiness; the exported series stay bounded
whatever the universe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from exporter.metrics import build_registry
from exporter.service import build_ingest
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.storage.db import create_pool
from exporter.storage.health import DatabaseFigures
from exporter.storage.writer import Writer
from tests.support.databases import Database
from tests.support.running import Exporter, key

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


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
        assert ingest.leadership is not None
        assert (await ingest.leadership.keep())["leading"]  # the refresh is the leader's
        result = await ingest.movers.run()
        assert result["movers"] >= 4 * 2 * len(categories) * settings.movers.keep
        for client in ingest.clients:
            venue = client.http.venue
            for family in FAMILIES[venue]:
                for status in STATUSES:
                    client.http.stats[(family, status)] += 1
                for event in ("retry", "give_up", "slow"):
                    client.http.events[(family, event)] += 1
                client.http.durations.labels(venue, family).observe(0.2)
        jobs = ingest.schedule(settings) + ingest.signals_schedule(settings)
        for name in [n for n, _, _ in jobs] + ["movers_refresh"]:
            await ingest.jobs.run(name, lambda: asyncio.sleep(0))
        database = DatabaseFigures()
        await database.refresh(pool)
        registry = build_registry([*ingest.collectors(), database])
        text = generate_latest(registry).decode()
        series = [line for line in text.splitlines() if line and not line.startswith("#")]
        moves = [line for line in series if line.startswith("movers_market_move_ratio")]
        assert len(moves) == len(settings.movers.windows) * settings.movers.export.max_series
        assert len(series) < 1000, len(series)
        await ingest.aclose()
    finally:
        await pool.close()
