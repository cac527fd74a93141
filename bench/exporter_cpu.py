"""Steady CPU of `movers run` tracking ~180,000 outcomes.

Run by hand (not a test): ``.venv/bin/python -m bench.exporter_cpu [--polymarket N] [--kalshi N]
[--seconds S]``. The same stack as ``bench.exporter_rss`` (a throwaway PostgreSQL cluster and
`movers sim` in its own process, default universe ~180k open outcomes); once `movers run` has
done its first movers refresh, reads the CPU time the kernel accounts to the exporter process
alone (user + system, from /proc) every 10 s for S seconds (default 300), then stops it.
Result: bench/results/exporter_cpu.json: mean cores over the whole span, and the busiest and
quietest 10 s.
"""

from __future__ import annotations

import os
import signal
import time

from bench.common import write_result
from bench.stack import simulated_stack, universe_arguments, wait_for_refresh

TICKS = os.sysconf("SC_CLK_TCK")
SAMPLE_SECONDS = 10.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (its threads included, not its children)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def main() -> None:
    scenario, seconds = universe_arguments(__doc__.split("\n")[0], 300)
    with simulated_stack(scenario) as stack:
        started = time.monotonic()
        exporter = stack.start_exporter()
        first = wait_for_refresh(stack.metrics_port, 900)
        before = cpu_seconds(exporter.pid)
        at = time.monotonic()
        samples: list[float] = []
        last, last_at = before, at
        while time.monotonic() - at < seconds:
            time.sleep(SAMPLE_SECONDS)
            now, now_at = cpu_seconds(exporter.pid), time.monotonic()
            samples.append((now - last) / (now_at - last_at))
            last, last_at = now, now_at
        used, span = last - before, last_at - at
        exporter.send_signal(signal.SIGTERM)
        _, status, _ = os.wait4(exporter.pid, 0)
    write_result(
        "exporter_cpu",
        {
            "universe": scenario["universe"],
            "seconds_to_first_movers_refresh": round(first - started, 1),
            "seconds_observed": round(span, 1),
            "cpu_seconds": round(used, 1),
            "mean_cores": round(used / span, 3),
            "busiest_10s_cores": round(max(samples), 3),
            "quietest_10s_cores": round(min(samples), 3),
            "exit_status": os.waitstatus_to_exitcode(status),
        },
    )


if __name__ == "__main__":
    main()
