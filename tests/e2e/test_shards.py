"""Markets shared out among collectors (README, Running several collectors): three collectors,
shards 0, 1 and 2 of 3, each a `movers run --once` against the simulator and one database,
store together exactly what one collector stores in another (no duplicate, no gap), each only
its own share of the markets; the leader lists both venues for all of them, and the price
sweeps (Kalshi's markets, Polymarket's events) read three slices of the listing by end time (a
gap or an overlap between the slices would lose or double prices)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.model import shard_of
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.storage.lease import Lease
from tests.support.databases import Database, Server, fresh
from tests.support.running import run_once

pytestmark = pytest.mark.db

SHARDS = 3


def _config(sim: Simulator, folder: Path, name: str, shard: int, shards: int) -> Path:
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["polymarket"] |= {"hot_size": 500, "stream": {"enabled": False}}
    # Kalshi's hot sets small (each shard's top 3): most prices come from the slices.
    venues["kalshi"] |= {"hot_size": 3, "requests_per_second": 50}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "venues": venues, "logging": {"format": "json"}, "backfill": {"enabled": False},
        "cluster": {"collector": name, "shard": {"index": shard, "count": shards}},
    }))  # fmt: skip
    return path


def _stored(db: Database) -> dict[str, Any]:
    with db.connect() as conn:
        return {
            "markets": conn.execute(
                "SELECT market_id, status, title, category FROM markets ORDER BY 1"
            ).fetchall(),
            "outcomes": conn.execute("SELECT outcome_id, name FROM outcomes ORDER BY 1").fetchall(),
            "prices": conn.execute(
                "SELECT outcome_id, price, bid, ask FROM snapshots ORDER BY 1, time"
            ).fetchall(),
            "trades": conn.execute(
                "SELECT outcome_id, trade_id, price, size FROM trades ORDER BY 1, 2"
            ).fetchall(),
        }


async def test_three_shards_store_what_one_collector_stores(
    postgres_server: Server, tmp_path: Path
) -> None:
    scenario = load_scenario({"seed": 17, "universe": {"polymarket": 60, "kalshi": 90}})
    async with Simulator(scenario, clock=ManualClock()) as sim:
        sim.advance(900)
        with fresh(postgres_server) as one, fresh(postgres_server) as shared:
            code, err = await run_once(one.url, _config(sim, tmp_path, "alone", 0, 1))
            assert code == 0, err[-3000:]
            alone = _stored(one)
            # Shard 0 leads (it lists both venues for everyone); then another collector holds
            # the lease, so shards 1 and 2 follow: they read the listings back from the database.
            other = Lease(shared.settings().database, "another collector")
            series = ("kalshi /series", 200)  # what a Kalshi discovery asks first
            tape = ("kalshi /markets/trades", 200)  # one feed: the leader reads it for all
            # Gamma's events (one page at this size): the leader's discovery reads them all, and
            # each shard's tail sweep its slice.
            events = ("gamma /events/keyset", 200)
            for shard in range(SHARDS):
                asked = [sim.truth.responses[k] for k in (series, tape, events)]
                config = _config(sim, tmp_path, f"movers-{shard}", shard, SHARDS)
                code, err = await run_once(shared.url, config)
                assert code == 0, err[-3000:]
                listed, taped, paged = (
                    sim.truth.responses[k] - n
                    for k, n in zip((series, tape, events), asked, strict=True)
                )
                if shard == 0:
                    assert (listed, taped, paged) == (1, 1, 2)
                    assert await other.hold()
                else:  # no discovery of its own, nor Kalshi's tape: its slice only
                    assert '"event": "following"' in err, err[-2000:]
                    assert (listed, taped, paged) == (0, 0, 1)
                # The leader stores both venues' whole listings for every shard.
                with shared.connect() as conn:
                    ids = [r[0] for r in conn.execute("SELECT market_id FROM markets")]
                owners = {shard_of(*i.split(":", 1), SHARDS) for i in ids}
                assert owners == set(range(SHARDS)), (shard, owners)
            together = _stored(shared)
            await other.release()
    assert alone["markets"]
    assert alone["prices"]
    assert alone["trades"]
    for table in ("markets", "outcomes", "prices"):
        assert together[table] == alone[table], table
    # Trades are collected for hot markets: one collector's top 3 are among the shards' top 3
    # each; none stored twice.
    assert set(alone["trades"]) <= set(together["trades"])
    assert len({t[1] for t in together["trades"]}) == len(together["trades"])
