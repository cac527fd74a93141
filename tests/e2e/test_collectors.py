"""Several collectors on one database (README, Running several collectors): two `movers run`
processes against the simulator and a real PostgreSQL. One leads (its /metrics has the movers
and `movers_leader 1`), the other follows (it ingests, its singleton jobs skip); killing the
leader's lease connection makes the other lead and the first follow (exporting no ranking of its
own any more); killing the leader (SIGKILL: no goodbye) moves the movers refresh back within two
refresh periods."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exporter.sim import ManualClock, Simulator, load_scenario
from tests.support.databases import Database
from tests.support.running import Exporter, Samples, key

pytestmark = pytest.mark.db

LEASE_EVERY = 1.0
REFRESH_EVERY = 3.0


def _config(sim: Simulator, name: str) -> dict[str, Any]:
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["polymarket"] |= {"hot_every": 2, "tail_every": 5, "stream": {"enabled": False}}
    venues["kalshi"] |= {"enabled": False}
    return {
        "venues": venues,
        "cluster": {"collector": name, "lease_every": LEASE_EVERY},
        "movers": {"every": REFRESH_EVERY},
        "backfill": {"enabled": False},
    }


def _leads(samples: Samples, name: str) -> bool:
    return samples.get(key("movers_leader", collector=name)) == 1.0


def _refreshes(samples: Samples) -> float:
    return samples.get(key("movers_job_runs_total", job_name="movers_refresh", outcome="ok"), 0)


async def test_one_collector_leads_and_another_takes_over_when_it_dies(
    pg: Database, tmp_path: Path
) -> None:
    scenario = load_scenario({"seed": 4, "universe": {"polymarket": 40, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(datetime.now(UTC))) as sim:
        sim.advance(60)
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        a = Exporter(pg.url, _config(sim, "collector-a"), tmp_path / "a")
        b = Exporter(pg.url, _config(sim, "collector-b"), tmp_path / "b")
        await a.start()
        await a.wait_for(lambda s: _leads(s, "collector-a"), 60, "a leads")
        await b.start()
        try:
            follower = await b.wait_for(
                lambda s: key("movers_leader", collector="collector-b") in s
                and key("movers_last_snapshot_timestamp_seconds", venue="polymarket") in s,
                60, "b follows and ingests",
            )  # fmt: skip
            assert not _leads(follower, "collector-b")
            leader = await a.wait_for(lambda s: _refreshes(s) >= 2, 30, "a refreshes")
            assert _leads(leader, "collector-a")
            await asyncio.sleep(2 * REFRESH_EVERY)
            # The follower's refresh job ran and skipped: no movers of its own.
            follower = await b.samples()
            assert not _leads(follower, "collector-b")
            assert not [n for n, _ in follower if n == "movers_market_move_ratio"]
            with pg.connect() as conn:
                assert conn.execute("SELECT holder, epoch FROM leases").fetchall() == [
                    ("collector-a", 1)
                ]
            # The leader's lease connection is cut (a network blip, an administrator) while it
            # runs on: b takes over, and a, at its next check, follows and stops exporting the
            # ranking it no longer refreshes.
            with pg.connect(autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted"
                )
            await b.wait_for(lambda s: _leads(s, "collector-b"), 10, "b takes over")
            demoted = await a.wait_for(
                lambda s: key("movers_leader", collector="collector-a") in s
                and not _leads(s, "collector-a"),
                10, "a follows",
            )  # fmt: skip
            assert key("movers_movers_computed_timestamp_seconds") not in demoted
            assert not [n for n, _ in demoted if n == "movers_market_move_ratio"]
            with pg.connect() as conn:
                assert conn.execute("SELECT holder, epoch FROM leases").fetchall() == [
                    ("collector-b", 2)
                ]
            # Then the leader dies without a word: a takes the lease back and refreshes within
            # two refresh periods (its next lease check, then its next refresh).
            assert b.process is not None
            b.process.kill()
            await b.process.wait()
            killed = time.monotonic()
            before = _refreshes(await a.samples())
            await a.wait_for(
                lambda s: _leads(s, "collector-a") and _refreshes(s) > before,
                2 * REFRESH_EVERY + 2, "a leads and refreshes again",
            )  # fmt: skip
            print(f"takeover: a refreshed {time.monotonic() - killed:.1f} s after b was killed")
            with pg.connect() as conn:
                assert conn.execute("SELECT holder, epoch FROM leases").fetchall() == [
                    ("collector-a", 3)
                ]
        finally:
            if b.process is not None and b.process.returncode is None:
                b.process.kill()
            await b.client.aclose()
            code, log, _ = await a.stop()
            assert code == 0, log[-3000:]
