"""`movers run` end to end against the simulator: a scripted jump reaches the movers table and
/metrics within one refresh; a database outage loses no snapshot; SIGTERM flushes held rows."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.truth import ServedQuote
from exporter.sim.world import World
from tests.support.databases import Database
from tests.support.running import Exporter, Samples, key, until
from tests.support.servers import NativePostgres, running_postgres

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OPEN = {"min_volume_24h": 0, "max_spread": None}


def _fast(sim: Simulator) -> dict[str, Any]:
    """Venue settings polling the simulator every second."""
    assert sim.urls is not None
    venues = sim.urls.venues()
    venues["polymarket"] |= {"hot_every": 1, "tail_every": 1, "trades_every": 5}
    venues["kalshi"] |= {"prices_every": 1, "hot_every": 1, "trades_every": 5,
                         "requests_per_second": 50}  # fmt: skip
    return venues


def _scenario(jumps: bool) -> tuple[Any, str, str]:
    """A small universe, with a +12 pp Polymarket jump and a -15 pp Kalshi jump at 30 s; returns
    the scenario and the two market ids."""
    base = {"seed": 21, "universe": {"polymarket": 30, "kalshi": 30}}
    world = World(load_scenario(base), T0)
    poly = world.poly_markets[3]
    kalshi = next(m for m in world.kalshi_markets if not m.event.multivariate)
    timeline = [
        {"at": "30s", "jump": {"venue": "polymarket", "market": 3, "from": 0.30, "to": 0.42}},
        {"at": "30s", "jump": {"venue": "kalshi", "market": kalshi.ticker, "from": 0.60,
                               "to": 0.45}},
    ]  # fmt: skip
    scenario = load_scenario({**base, "timeline": timeline if jumps else []})
    return scenario, f"polymarket:{poly.condition_id}", f"kalshi:{kalshi.ticker}"


def _move(samples: Samples, market: str, venue: str) -> float | None:
    for (name, labels), value in samples.items():
        found = dict(labels)
        if name == "movers_market_move_ratio" and found["market_id"] == market:
            assert found["venue"] == venue
            return value
    return None


def _ready(samples: Samples) -> bool:
    return all(
        key("movers_last_snapshot_timestamp_seconds", venue=v) in samples
        for v in ("polymarket", "kalshi")
    ) and bool(samples.get(key("movers_job_runs_total", job_name="movers_refresh", outcome="ok")))


async def test_a_scripted_jump_reaches_the_movers_table_and_metrics(
    pg: Database, tmp_path: Path
) -> None:
    scenario, poly_id, kalshi_id = _scenario(jumps=True)
    async with Simulator(scenario, clock=ManualClock(T0)) as sim:
        exporter = Exporter(pg.url, {
            "venues": _fast(sim),
            "movers": {"windows": ["10s"], "every": "1s",
                       "filters": {"polymarket": OPEN, "kalshi": OPEN}},
        }, tmp_path)  # fmt: skip
        await exporter.start()
        try:
            await exporter.wait_for(_ready, 60, "first prices and movers refresh")
            # The prices before the jump must be older than the window.
            await asyncio.sleep(10.5)
            assert _move(await exporter.samples(), poly_id, "polymarket") is None
            sim.advance(31)
            samples = await exporter.wait_for(
                lambda s: (
                    _move(s, poly_id, "polymarket") is not None
                    and _move(s, kalshi_id, "kalshi") is not None
                ),
                8,
                "both jumps exported as movers",
            )
            assert _move(samples, poly_id, "polymarket") == pytest.approx(0.12, abs=0.011)
            assert _move(samples, kalshi_id, "kalshi") == pytest.approx(-0.15, abs=0.011)
            info = [
                dict(labels)
                for (name, labels), _ in samples.items()
                if name == "movers_market_info" and dict(labels)["market_id"] == poly_id
            ]
            assert len(info) == 1
            assert info[0]["url"].startswith("https://polymarket.com/")
            assert info[0]["title"]
            with pg.connect() as conn:
                stored = conn.execute(
                    "SELECT move_pp, price_then, title FROM movers"
                    " WHERE market_id = %s AND window_label = '10s'",
                    (poly_id,),
                ).fetchone()
            assert stored is not None
            assert stored[0] == pytest.approx(12, abs=1.1)
            top = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "exporter", "top", "--window", "10s", "--venue",
                "polymarket", env=exporter.env | {"COLUMNS": "250"},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await top.communicate()
            assert top.returncode == 0, err.decode()
            text = out.decode()
            assert "Top movers, 10s" in text
            assert "+12.0 pp" in text or "+11." in text or "+12." in text
            assert stored[2][:20] in text
            assert len(samples) < 1000
        finally:
            code, err, _ = await exporter.stop()
        assert code == 0, err[-3000:]


@pytest.fixture
def cluster() -> Iterator[NativePostgres]:
    with running_postgres(("fsync=off",)) as server:
        yield server


def _missing(cluster: NativePostgres, served: dict[str, ServedQuote]) -> list[str]:
    """Outcome keys whose served quote has no snapshot row with that bid and ask."""
    with psycopg.connect(cluster.url) as conn:
        rows = conn.execute("SELECT outcome_id, bid, ask FROM snapshots").fetchall()
    stored: dict[str, set[tuple[float | None, float | None]]] = {}
    for outcome, bid, ask in rows:
        stored.setdefault(outcome.split(":", 1)[1], set()).add(
            (None if bid is None else round(bid, 6), None if ask is None else round(ask, 6))
        )
    return [
        k
        for k, q in served.items()
        if (
            None if q.bid is None else round(q.bid, 6),
            None if q.ask is None else round(q.ask, 6),
        )
        not in stored.get(k, set())
    ]


async def _hold_through_outage(
    sim: Simulator, exporter: Exporter, cluster: NativePostgres
) -> dict[str, ServedQuote]:
    """Stop the database, move every price, and return the quotes served while it was down for
    the outcomes the exporter tracks (a listing also serves markets it skips, e.g. closed ones)."""
    with psycopg.connect(cluster.url) as conn:
        rows = conn.execute("SELECT DISTINCT outcome_id FROM snapshots").fetchall()
    tracked = {outcome.split(":", 1)[1] for (outcome,) in rows}
    cluster.stop()
    moment = sim.advance(120)
    await exporter.wait_for(
        lambda s: s.get(key("movers_buffer_rows", table="snapshots"), 0) > 0,
        30,
        "rows held while the database is down",
    )
    await asyncio.sleep(2.5)  # every hot and tail poll has run at least once more
    return {k: q for k, q in sim.truth.quotes.items() if q.seconds >= moment and k in tracked}


async def test_a_database_outage_loses_no_snapshot_and_sigterm_flushes(
    cluster: NativePostgres, tmp_path: Path
) -> None:
    scenario, _, _ = _scenario(jumps=False)
    async with Simulator(scenario, clock=ManualClock(T0)) as sim:
        exporter = Exporter(cluster.url, {
            "database": {"connect_timeout": 1},
            "venues": _fast(sim),
        }, tmp_path)  # fmt: skip
        await exporter.start()
        try:
            await exporter.wait_for(_ready, 60, "first prices")
            during = await _hold_through_outage(sim, exporter, cluster)
            assert len(during) > 40
            cluster.start()
            back = time.monotonic()
            sim.advance(120)  # new prices after the outage, so they differ from the held ones
            await exporter.wait_for(
                lambda s: s.get(key("movers_buffer_rows", table="snapshots")) == 0,
                30,
                "held rows written after the database came back",
            )
            assert _missing(cluster, during) == []
            print(f"drill: outage: {len(during)} quotes served while down, 0 missing,"
                  f" held rows written {time.monotonic() - back:.1f} s after recovery")  # fmt: skip
            # A second outage, ended just before SIGTERM: the shutdown writes what is held.
            during = await _hold_through_outage(sim, exporter, cluster)
            cluster.start()
        finally:
            code, err, seconds = await exporter.stop()
        assert code == 0, err[-3000:]
        assert seconds < 10
        assert "held rows stored" in err
        assert _missing(cluster, during) == []


async def test_sigterm_lets_the_jobs_in_flight_finish_then_exits_cleanly(
    pg: Database, tmp_path: Path
) -> None:
    """A Kalshi price sweep waiting on a slow venue (1.5 s) when SIGTERM arrives: nothing new
    starts, the sweep's response is still taken and stored, no ERROR line, exit 0 within 10 s."""
    throttle = {"venue": "kalshi", "endpoint": "kalshi /markets", "delay": "1500ms"}
    slow = {"at": 0, "for": "1d", "throttle": throttle}
    scenario = load_scenario(
        {"seed": 21, "universe": {"polymarket": 5, "kalshi": 30}, "timeline": [slow]}
    )
    async with Simulator(scenario, clock=ManualClock(T0)) as sim:
        venues = _fast(sim)
        venues["polymarket"]["enabled"] = False
        exporter = Exporter(
            pg.url, {"venues": venues, "logging": {"format": "json", "level": "debug"}}, tmp_path
        )
        await exporter.start()
        runs = key("movers_job_runs_total", job_name="kalshi_prices", outcome="ok")
        await exporter.wait_for(lambda s: s.get(runs, 0) >= 1, 60, "a first Kalshi sweep")
        # The moment a throttled request starts, a job waits 1.5 s on it: stop then.
        injected = len(sim.truth.injected)
        await until(lambda: len(sim.truth.injected) > injected, 10, "a throttled request")
        code, err, seconds = await exporter.stop()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert code == 0, err[-3000:]
    assert seconds < 10
    assert not [line for line in lines if line["level"] in ("error", "critical")], err[-3000:]
    stopping = next(i for i, line in enumerate(lines) if line["event"] == "stopping")
    in_flight = lines[stopping]["running"]
    assert in_flight, "no job was in flight at SIGTERM: the drill proved nothing"
    finished = {line.get("job") for line in lines[stopping:] if line["event"] == "job done"}
    assert set(in_flight) <= finished
    assert not [line for line in lines if line["event"] == "jobs cancelled at shutdown"]
    print(f"drill: SIGTERM with {in_flight} in flight: exit 0 after {seconds:.1f} s")


async def test_sigterm_with_rows_it_could_not_store_exits_non_zero(
    cluster: NativePostgres, tmp_path: Path
) -> None:
    """The database is still down at SIGTERM: the held rows are lost, and the exit code says so
    (a supervisor, or `docker compose`, sees a failed stop)."""
    scenario, _, _ = _scenario(jumps=False)
    async with Simulator(scenario, clock=ManualClock(T0)) as sim:
        exporter = Exporter(cluster.url, {
            "database": {"connect_timeout": 1}, "venues": _fast(sim),
        }, tmp_path)  # fmt: skip
        await exporter.start()
        try:
            await exporter.wait_for(_ready, 60, "first prices")
            await _hold_through_outage(sim, exporter, cluster)
        finally:
            code, err, seconds = await exporter.stop()
            cluster.start()
    assert code == 1, err[-3000:]
    assert seconds < 15
    assert "held rows not stored" in err
