"""History backfill beside live ingestion: wall time against the rate budget's minimum, rows
written per second, the ingest lag meanwhile, and the movers refreshes meanwhile and right after.

Run by hand (not a test): ``.venv/bin/python -m bench.backfill [--polymarket N] [--kalshi N] [--hot
N] [--kalshi-rps R] [--polymarket-share S] [--settle SECONDS] [--steady N]``. `movers sim` in its
own process (its clock starting now, so its past is the last week), a throwaway PostgreSQL cluster,
and `movers run` with the default backfill settings: the hot set (``--hot`` outcomes a venue, minute
by minute) and every other open outcome (hourly), 7 days back, on the budget live jobs leave. The
movers refreshes are timed during the backfill, right after it, while the rollups take the history
in (until no re-roll older than an hour is pending, at most ``--settle`` seconds), and then
``--steady`` more: the steady state of the same setup, to compare with. Each refresh's time is its
job's (waiting for a rollup step in flight included), the wait also apart.

The budgets are set low (Kalshi ``--kalshi-rps`` reads a second, the keyless default;
Polymarket ``--polymarket-share`` of each documented budget) so that the rate limits, not the
simulator (one Python process computing every point) or this machine's two cores, bound the
backfill: the ratio measures how much of the budget the backfill uses beside live jobs. The
universe is a tenth of the 180,000-outcome target by default for the same reason; each request
is as large as the venues allow (20 tokens, 10,000 candles), so the request count scales
linearly and the ratio does not depend on the universe's size.

For the documented budgets (Polymarket 80 history requests a second, Kalshi 20 reads a second
less what its live jobs used) the result gives the minimum the same requests would need, the
rows a second that would take, and the database's own floor: the server alone writing every
backfilled row again into a table of the same definition, with nothing else running. Also the
exporter's peak RSS (``backfill.points_held`` bounds the answers it holds).

Result: bench/results/backfill.json.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench.common import write_result
from bench.stack import simulated_stack
from exporter.config import BackfillConfig

VENUES = ("polymarket", "kalshi")
# History requests a second the venues document (API_NOTES 1.9 and 2.7): Polymarket's
# /prices-history 1,000 per 10 s at the exporter's default share (0.8); Kalshi's Basic read tier.
DOCUMENTED = {"polymarket": 1000 * 0.8 / 10, "kalshi": 20.0}
POLL = 0.5


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    return sum(
        v for (n, found), v in samples.items()
        if n == name and all(dict(found).get(k) == w for k, w in labels.items())
    )  # fmt: skip


def filled_outcomes(samples: dict[Any, float], venue: str, fidelity: str) -> float:
    return sum(
        total(samples, "movers_backfill_outcomes", venue=venue, fidelity=fidelity, state=state)
        for state in ("done", "covered")
    )


def history_latency(samples: dict[Any, float], venue: str) -> float:
    """Mean seconds of the venue's history requests (each attempt)."""
    sums = counts = 0.0
    for (name, found), value in samples.items():
        labels = dict(found)
        if labels.get("venue") != venue or not any(
            word in labels.get("endpoint", "") for word in ("history", "candle")
        ):
            continue
        if name == "movers_venue_request_duration_seconds_sum":
            sums += value
        elif name == "movers_venue_request_duration_seconds_count":
            counts += value
    return round(sums / counts, 3) if counts else math.nan


def live_requests(samples: dict[Any, float], venue: str) -> float:
    """The venue's requests other than history (each attempt): what live jobs spend."""
    return sum(
        value for (name, found), value in samples.items()
        if name == "movers_venue_requests_total" and dict(found).get("venue") == venue
        and not any(word in dict(found).get("endpoint", "") for word in ("history", "candle"))
    )  # fmt: skip


def peak_rss(pid: int) -> float:
    """The process's peak resident memory so far, in MB (Linux's VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return math.nan


def re_rolled(url: str) -> bool:
    """Whether the rollups took the backfilled range in: no re-roll older than an hour is
    pending (live rows a little late note recent buckets all the time)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM movers_internal.rollup_invalidations"
            " WHERE lo < now() - interval '1 hour'"
        ).fetchone()
    return row is not None and row[0] == 0


def activity(url: str) -> tuple[int, int]:
    """Autovacuum workers at work and rollup steps running now."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE backend_type = 'autovacuum worker'),"
            " count(*) FILTER (WHERE state = 'active' AND query LIKE 'INSERT INTO %%_store%%')"
            " FROM pg_stat_activity"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def summary(
    refreshes: dict[float, float],
    waits: dict[float, float],
    busy: list[tuple[float, int, int]],
) -> dict[str, Any]:
    """Median and max of the refreshes' seconds (their job's, a wait included), of what they
    waited for a rollup step in flight, and the share of the polls during the refreshes that
    saw an autovacuum worker or a rollup step at work."""
    waited = [waits.get(ended, 0.0) for ended in refreshes]
    during = [
        (vacuums, steps)
        for at, vacuums, steps in busy
        if any(ended - seconds <= at <= ended for ended, seconds in refreshes.items())
    ]
    return {
        "polls_during_with_autovacuum": round(sum(v > 0 for v, _ in during) / len(during), 2)
        if during
        else None,
        "polls_during_with_rollup_step": round(sum(s > 0 for _, s in during) / len(during), 2)
        if during
        else None,
        "refreshes": len(refreshes),
        "median": round(statistics.median(refreshes.values()), 3) if refreshes else None,
        "max": round(max(refreshes.values()), 3) if refreshes else None,
        "waited_median": round(statistics.median(waited), 3) if waited else None,
        "waited_max": round(max(waited), 3) if waited else None,
    }


def database_floor(url: str) -> tuple[int, float]:
    """Rows and seconds for the server alone to write every backfilled row again into a
    table of the same definition (its key and indexes): no venue, no client, no parsing. The
    least time any backfill of these rows can take on this machine."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE floor_snapshots (LIKE snapshots INCLUDING ALL)")
        started = time.monotonic()
        rows = conn.execute(
            "INSERT INTO floor_snapshots SELECT * FROM snapshots WHERE source = 'backfill'"
        ).rowcount
        seconds = time.monotonic() - started
        conn.execute("DROP TABLE floor_snapshots")
    return rows, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polymarket", type=int, default=3_200)
    parser.add_argument("--kalshi", type=int, default=13_400)
    parser.add_argument("--hot", type=int, default=100)
    parser.add_argument("--kalshi-rps", type=float, default=3.0)
    parser.add_argument("--polymarket-share", type=float, default=0.05)
    parser.add_argument("--within", type=float, default=1800)
    parser.add_argument(
        "--settle",
        type=float,
        default=0,
        help="at most this many seconds of timing the movers refreshes after the backfill while "
        "the rollups re-roll its range",
    )
    parser.add_argument(
        "--steady",
        type=int,
        default=0,
        help="movers refreshes timed once the rollups are done (the steady state to compare)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="backfill.concurrency (default: the exporter's)",
    )
    parser.add_argument(
        "--points-held",
        type=int,
        default=None,
        help="backfill.points_held (default: the exporter's)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        default=None,
        help="the exporter's log at debug level (each job's result) into this file",
    )
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    scenario = {"seed": 5, "start": now.isoformat().replace("+00:00", "Z"),
                "universe": {"polymarket": args.polymarket, "kalshi": args.kalshi}}  # fmt: skip

    def adjust(venues: dict[str, Any]) -> None:
        stream = {"enabled": False, "size": args.hot}
        venues["polymarket"] |= {
            "rate_limit_share": args.polymarket_share, "hot_size": args.hot // 2,
            "stream": stream,
        }  # fmt: skip
        venues["kalshi"] |= {
            "requests_per_second": args.kalshi_rps, "hot_size": args.hot, "stream": stream,
        }  # fmt: skip

    with simulated_stack(scenario, adjust, separate=True) as stack:
        if args.concurrency is not None:
            stack.env["MOVERS__BACKFILL__CONCURRENCY"] = str(args.concurrency)
        if args.points_held is not None:
            stack.env["MOVERS__BACKFILL__POINTS_HELD"] = str(args.points_held)
        if args.log is not None:
            stack.env["MOVERS__LOGGING__LEVEL"] = "debug"
        exporter = stack.start_exporter(args.log)
        started = time.monotonic()
        working = dict.fromkeys(VENUES, 0.0)
        lag_during = dict.fromkeys(VENUES, 0.0)
        lag_else = dict.fromkeys(VENUES, 0.0)
        first_work: dict[str, float] = {}
        last_work: dict[str, float] = {}
        live_at: dict[str, list[float]] = {}
        samples: dict[Any, float] = {}
        finished_at = None
        refreshes: dict[float, float] = {}  # each refresh seen (its end): its seconds
        waits: dict[float, float] = {}  # each refresh seen: what it waited for a step
        first_after: tuple[float, float] | None = None  # the first refresh after: end, seconds
        settled: dict[float, float] = {}  # the refreshes after it, until the rollups are done
        rolled_at = None  # when no re-roll older than an hour was pending any more
        steady: dict[float, float] = {}  # the refreshes after that
        busy: list[tuple[float, int, int]] = []  # each poll: time, autovacuums, rollup steps
        while time.monotonic() - started < args.within:
            time.sleep(POLL)
            samples = scrape(stack.metrics_port)
            if not samples:
                continue
            moment = time.monotonic()
            busy.append((time.time(), *activity(stack.server.url)))
            ended = total(samples, "movers_job_last_success_timestamp_seconds",
                          job_name="movers_refresh")  # fmt: skip
            seconds = total(samples, "movers_job_last_duration_seconds", job_name="movers_refresh")
            if ended:
                waits[ended] = total(samples, "movers_refresh_waited_seconds")
            if first_work and ended and finished_at is None:
                refreshes[ended] = seconds
            for venue in VENUES:
                running = total(samples, "movers_backfill_running", venue=venue) > 0
                last = total(samples, "movers_last_snapshot_timestamp_seconds", venue=venue)
                lag = time.time() - last if last else 0.0
                if running:
                    working[venue] += POLL
                    first_work.setdefault(venue, moment)
                    last_work[venue] = moment
                    live_at.setdefault(venue, [live_requests(samples, venue)] * 2)[1] = (
                        live_requests(samples, venue)
                    )
                    lag_during[venue] = max(lag_during[venue], lag)
                elif first_work:
                    lag_else[venue] = max(lag_else[venue], lag)
            filled = all(
                total(samples, "movers_backfill_outcomes", venue=v, state="queued") == 0
                and total(samples, "movers_backfill_outcomes", venue=v, state="covered")
                + total(samples, "movers_backfill_outcomes", venue=v, state="done")
                > args.hot
                and not total(samples, "movers_backfill_running", venue=v)
                for v in VENUES
            )
            if filled and finished_at is None:
                finished_at = time.time()
            if finished_at is None or ended <= finished_at:
                continue
            if first_after is None:
                first_after = (ended, seconds)
            elif rolled_at is None and ended != first_after[0]:
                settled[ended] = seconds
            if rolled_at is None and (
                re_rolled(stack.server.url) or time.time() - finished_at >= args.settle
            ):
                rolled_at = time.time()
            elif rolled_at is not None and ended > rolled_at:
                steady[ended] = seconds
            if rolled_at is not None and len(steady) >= args.steady:
                break
        refresh = first_after[1] if first_after else math.nan
        peak_rss_mb = peak_rss(exporter.pid)
        exporter.send_signal(signal.SIGTERM)
        _, status, _ = os.wait4(exporter.pid, 0)
        floor_rows, floor_seconds = database_floor(stack.server.url)
    budgets = {
        "polymarket": max(1, int(1000 * args.polymarket_share)) / 10.0,
        "kalshi": args.kalshi_rps,
    }
    floor_rate = floor_rows / floor_seconds if floor_seconds else math.nan
    venues: dict[str, Any] = {}
    for venue in VENUES:
        requests = total(samples, "movers_backfill_requests_total", venue=venue)
        rows = total(samples, "movers_backfill_rows_total", venue=venue, outcome="written")
        minimum = requests / budgets[venue]
        span = working[venue]
        live = live_at.get(venue, [0.0, 0.0])
        live_rate = (live[1] - live[0]) / max(span, POLL)
        # Polymarket's history budget is its own (live jobs use other endpoints); Kalshi's
        # one read bucket is shared with live jobs, which need what they used here.
        documented = DOCUMENTED[venue] - (live_rate if venue == "kalshi" else 0.0)
        documented_minimum = requests / documented
        left = budgets[venue] - (live_rate if venue == "kalshi" else 0.0)
        left_minimum = requests / left if left > 0 else math.nan
        venues[venue] = {
            "history_requests": int(requests),
            "requests_per_second_allowed": budgets[venue],
            "seconds_backfilling": round(span, 1),
            "seconds_first_to_last_pass": round(
                last_work.get(venue, 0) - first_work.get(venue, 0), 1
            ),
            "minimum_seconds": round(minimum, 1),
            "wall_over_minimum": round(span / minimum, 3) if minimum else math.nan,
            # What the backfill could have had: Kalshi's live jobs take their share first.
            "minimum_seconds_after_live": round(left_minimum, 1),
            "wall_over_minimum_after_live": round(span / left_minimum, 3)
            if left_minimum
            else math.nan,
            "rows_written": int(rows),
            "rows_per_second": round(rows / span) if span else 0,
            "outcomes_filled": {f: filled_outcomes(samples, venue, f) for f in ("1m", "1h")},
            "history_request_seconds_mean": history_latency(samples, venue),
            "failed_requests": int(
                total(samples, "movers_backfill_requests_total", venue=venue, result="failed")
            ),
            "max_ingest_lag_seconds_during_backfill": round(lag_during[venue], 1),
            "max_ingest_lag_seconds_otherwise": round(lag_else[venue], 1),
            "live_requests_per_second_during_backfill": round(live_rate, 2),
            "documented_budget": {
                "history_requests_per_second": round(documented, 2),
                "minimum_seconds": round(documented_minimum, 1),
                "rows_per_second_needed": round(rows / documented_minimum),
                "database_floor_seconds": round(rows / floor_rate, 1),
                "database_floor_over_minimum": round(rows / floor_rate / documented_minimum, 3),
            },
        }
    write_result(
        "backfill",
        {
            "universe": scenario["universe"],
            "hot_outcomes_per_venue": args.hot,
            "backfill_concurrency": args.concurrency or BackfillConfig().concurrency,
            "backfill_points_held": args.points_held or BackfillConfig().points_held,
            "since": "7d",
            "venues": venues,
            "movers_refresh_seconds_after_backfill": round(refresh, 3),
            "movers_refresh_waited_after_backfill": round(
                waits.get(first_after[0], math.nan) if first_after else math.nan, 3
            ),
            "movers_refresh_seconds_settling": summary(settled, waits, busy)
            | {
                "seconds": round(rolled_at - finished_at, 1)
                if rolled_at is not None and finished_at is not None
                else None,
                "rollups_done": rolled_at is not None
                and finished_at is not None
                and rolled_at - finished_at < args.settle,
            },
            "movers_refresh_seconds_steady": summary(steady, waits, busy),
            "movers_refresh_seconds_during_backfill": summary(refreshes, waits, busy),
            "exporter_peak_rss_mb": peak_rss_mb,
            "database_floor": {
                "rows": floor_rows,
                "seconds": round(floor_seconds, 1),
                "rows_per_second": round(floor_rate),
            },
            "finished": finished_at is not None,
            "exit_status": os.waitstatus_to_exitcode(status),
        },
    )


if __name__ == "__main__":
    main()
