"""``movers backfill`` as a user runs it: a real process against the simulator and a real
database, run twice, killed and run again, and given bad arguments."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.sim import ManualClock, Simulator, load_scenario
from tests.support.databases import Database
from tests.support.running import run_once

pytestmark = pytest.mark.db


def _rows(db: Database, sql: str) -> Any:
    with db.connect() as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


async def _backfill(config: Path, url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "backfill", *args,
        env={**os.environ, "MOVERS_DATABASE_URL": url, "MOVERS_CONFIG": str(config)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, err.decode()


def _config(sim: Simulator, tmp_path: Path) -> Path:
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["kalshi"] = {"enabled": False}
    venues["polymarket"] |= {"hot_size": 5, "stream": {"enabled": False}}
    path = tmp_path / "movers.yaml"
    data = {"venues": venues, "logging": {"format": "json"}, "backfill": {"concurrency": 1}}
    path.write_text(yaml.safe_dump(data))
    return path


async def test_backfill_command_fills_once_resumes_after_a_kill_and_refuses_bad_input(
    pg: Database, tmp_path: Path
) -> None:
    scenario = load_scenario({"seed": 12, "universe": {"polymarket": 20, "kalshi": 0}})
    async with Simulator(scenario, clock=ManualClock(datetime.now(UTC))) as sim:
        sim.advance(60)
        config = _config(sim, tmp_path)
        code, err = await run_once(pg.url, config)
        assert code == 0, err
        live = _rows(pg, "SELECT count(*) FROM snapshots")

        # Killed while it fills the hot set minute by minute: a second run finishes the job,
        # asking only for what the first did not store.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "exporter", "backfill", "--fidelity", "1m", "--since", "2d",
            env={**os.environ, "MOVERS_DATABASE_URL": pg.url, "MOVERS_CONFIG": str(config)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(600):
            await asyncio.sleep(0.05)
            if _rows(pg, "SELECT count(*) FROM movers_internal.backfill_cursors") >= 20:
                break
        process.send_signal(signal.SIGKILL)
        await process.wait()
        before = _rows(pg, "SELECT count(*) FROM movers_internal.backfill_cursors")
        outcomes = _rows(pg, "SELECT count(*) FROM outcomes")
        assert 20 <= before < outcomes
        code, err = await _backfill(config, pg.url, "--fidelity", "1m", "--since", "2d")
        assert code == 0, err
        assert f"{before:,} already covered" in err
        assert _rows(pg, "SELECT count(*) FROM movers_internal.backfill_cursors") == outcomes
        filled = _rows(pg, "SELECT count(*) FROM snapshots")
        assert filled > live
        assert _rows(pg, "SELECT count(*) FROM snapshots WHERE source = 'live'") == live

        # Again: nothing is missing, nothing is asked, nothing is added.
        code, err = await _backfill(config, pg.url, "--fidelity", "1m", "--since", "2d")
        assert code == 0, err
        assert f"0 outcomes filled, {outcomes:,} already covered" in err
        assert "; 0 requests" in err
        assert _rows(pg, "SELECT count(*) FROM snapshots") == filled

        code, err = await _backfill(config, pg.url, "--market", "no-such-market")
        assert code == 2
        assert "--market" in err
        assert "no stored market matches no-such-market" in err
        code, err = await _backfill(config, pg.url, "--since", "a week")
        assert code == 2
        assert "--since" in err
