"""Polymarket's RTDS trades stream: recorded frames parse into the Data API's trade ids, and
against the simulator streamed trades are stored and deduplicate against the Data API job."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.ingest.polymarket_trades_stream import PolymarketTradesStreamer
from exporter.normalize.polymarket import parse_trade
from exporter.normalize.polymarket_stream import parse_rtds
from exporter.sim import ManualClock, Simulator, load_scenario
from tests.support.databases import Database
from tests.support.ingest import polymarket_ingest, polymarket_settings
from tests.support.running import fast_delays, until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "venues" / "polymarket"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_recorded_frames_give_the_data_api_trade_ids() -> None:
    text = (FIXTURES / "rtds_activity_trades_2026-08-19.jsonl").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    for line in lines:
        trade = parse_rtds(line)
        assert trade is not None
        payload = json.loads(line)["payload"]
        assert trade == parse_trade(payload)  # the same id as the Data API job's row
        assert trade.time.timestamp() == payload["timestamp"]  # seconds, not the envelope's ms
    for line in (FIXTURES / "rtds_crypto_prices_2026-06.jsonl").read_text().splitlines():
        if line.strip():
            assert parse_rtds(line) is None  # other topics are not trades
    assert parse_rtds("PONG") is None


@pytest.mark.db
async def test_streamed_trades_are_stored_once_beside_the_data_api_job(pg: Database) -> None:
    scenario = load_scenario({"seed": 13, "universe": {"polymarket": 30, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        settings = polymarket_settings(pg, sim, hot_size=30, trades_stream={"enabled": True})
        async with polymarket_ingest(settings) as ingest:
            await ingest.discover()
            streamer = PolymarketTradesStreamer(
                settings.venues.polymarket, ingest.hot, ingest.writer, ingest.rejects,
                reconnect_delays=fast_delays(),
            )  # fmt: skip
            task = asyncio.create_task(streamer.run())
            try:
                await until(lambda: streamer.connected, 10, "subscribed")
                await asyncio.sleep(0.2)
                for _ in range(30):
                    sim.advance(5)
                    await asyncio.sleep(0.02)
                await until(lambda: streamer.counts["written"] > 0 and not streamer.pending,
                            10, "streamed trades written")  # fmt: skip
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with pg.connect() as conn:
                (streamed,) = conn.execute("SELECT count(*) FROM trades").fetchone() or (0,)
            assert streamed == streamer.counts["written"] == streamer.counts["kept"]
            # The Data API job now finds the same trades already stored.
            await ingest.collect_trades()
            with pg.connect() as conn:
                rows = conn.execute(
                    "SELECT count(*), count(DISTINCT (trade_id)) FROM trades"
                ).fetchone()
            assert rows is not None
            assert rows[0] == rows[1]
            assert ingest.writer.totals[("trades", "polymarket", "duplicate")] > 0
