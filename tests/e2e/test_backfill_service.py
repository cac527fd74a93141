"""`movers run` fills the venues' history on its own: every outcome once, on the rate budget live
requests leave (never more than the budget in any window, the live sweeps on their cadence),
visible on /metrics."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.sim import ManualClock, Simulator, load_scenario
from tests.support.databases import Database
from tests.support.running import Exporter, Samples, key
from tests.support.tap import tapped

pytestmark = pytest.mark.db
BUDGET = 3  # Kalshi reads a second: one bucket for live and history requests
WINDOW = 0.9
"""The venue's second as the tap can tell it: the limiter spaces grants by a second and 50 ms;
between a grant and the request reaching the tap, this loaded two-core machine (exporter,
simulator and database at once) adds up to about 60 ms now and then."""
PRICES_EVERY = 2.0


def _outcomes(samples: Samples, state: str) -> dict[str, float]:
    return {
        dict(labels)["fidelity"]: v for (name, labels), v in samples.items()
        if name == "movers_backfill_outcomes" and dict(labels)["state"] == state
    }  # fmt: skip


def _filled(samples: Samples) -> bool:
    """The hot set minute by minute and the rest hourly, nothing queued, no pass running."""
    done, covered = _outcomes(samples, "done"), _outcomes(samples, "covered")
    filled = {f: done.get(f, 0) + covered.get(f, 0) for f in ("1m", "1h")}
    return (
        filled["1m"] >= 20 and filled["1h"] >= 150
        and not any(_outcomes(samples, "queued").values())
        and not samples.get(key("movers_backfill_running", venue="kalshi"))
    )  # fmt: skip


def _crowded(arrivals: list[tuple[float, str]]) -> list[list[tuple[float, str]]]:
    """The one-second windows holding more than the budget, for the failure message."""
    origin = arrivals[0][0]
    return [
        [(round(t - origin, 3), line[:60]) for t, line in arrivals[i:] if t - start < WINDOW]
        for i, (start, _) in enumerate(arrivals)
        if sum(1 for t, _ in arrivals[i:] if t - start < WINDOW) > BUDGET
    ]


def _most_in_a_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= WINDOW:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_the_service_backfills_on_what_live_requests_leave(
    pg: Database, tmp_path: Path
) -> None:
    scenario = load_scenario({"seed": 14, "universe": {"polymarket": 0, "kalshi": 200}})
    async with Simulator(scenario, clock=ManualClock(datetime.now(UTC))) as sim:
        sim.advance(60)
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["polymarket"] = {"enabled": False}
        with tapped(sim.urls.kalshi_rest) as (rest_url, tap):
            venues["kalshi"] |= {
                "rest_url": rest_url, "prices_every": PRICES_EVERY, "hot_every": PRICES_EVERY,
                "trades_every": 10, "requests_per_second": BUDGET, "hot_size": 20,
            }  # fmt: skip
            config = {"venues": venues, "backfill": {"every": "2s"}}
            exporter = Exporter(pg.url, config, tmp_path)
            await exporter.start()
            try:
                samples = await exporter.wait_for(_filled, 120, "every outcome's history")
            finally:
                code, log, _ = await exporter.stop()
            assert code == 0, log[-2000:]
            arrivals = list(tap.arrivals)
    assert samples[key("movers_backfill_rows_total", venue="kalshi", outcome="written")] > 0
    assert samples.get(key("movers_backfill_requests_total", venue="kalshi", result="failed")) == 0
    # Counted as the venue counts them: when they reach it.
    history = [t for t, line in arrivals if "/candlesticks" in line]
    assert len(history) > 20
    assert _most_in_a_second([t for t, _ in arrivals]) <= BUDGET, _crowded(arrivals)
    # The live sweeps kept their cadence while the history was fetched: no gap between two
    # /markets requests longer than the cadence plus one window of the limiter (and the
    # request's own time).
    during = [t for t, line in arrivals if line.split(" ")[1].split("?")[0].endswith("/markets")
              and history[0] <= t <= history[-1]]  # fmt: skip
    assert len(during) > 3
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert max(gaps) <= PRICES_EVERY + 1.0 + 1.0
    with pg.connect() as conn:
        late = conn.execute(
            "WITH live AS (SELECT outcome_id, min(time) AS first FROM snapshots"
            " WHERE source = 'live' GROUP BY outcome_id)"
            " SELECT count(*) FROM snapshots b JOIN live USING (outcome_id)"
            " WHERE b.source = 'backfill' AND b.time >= live.first"
        ).fetchone()
    assert late == (0,)
