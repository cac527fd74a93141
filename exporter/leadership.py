"""Which collector runs the singleton jobs when several share one database.

Every collector ingests (its shard of the markets, or every market with one shard); one at a
time also runs the jobs that work on the whole database (the
movers refresh, the pairs, the alert-tuning replay, the market and volume signals, the
maintenance and backfill passes): the holder of the lease (:mod:`exporter.storage.lease`). A
follower checks every ``cluster.lease_every`` and takes over when the lease is free (its holder
stopped, died or lost its connection). ``/metrics`` says which collector leads
(``movers_leader``) and how often this one was elected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.storage.lease import Lease

log = structlog.get_logger("exporter.leadership")

SINGLETONS = ("movers_refresh", "maintenance", "signals_markets", "signals_volume",
              "alert_tuning", "pairs")  # fmt: skip
"""The jobs only the leader runs."""
SHARDED_LEADER_JOBS = ("polymarket_discovery", "kalshi_discovery", "kalshi_trades")
"""With several shards the leader lists each venue and stores it all, the others read it back;
and it reads Kalshi's trade tape (one feed for every market) for every shard's hot set."""
BACKFILLS = ("polymarket_backfill", "kalshi_backfill")
"""The leader's too while every collector ingests every market; each collector's own when they
share the markets out (each fills the history of what it owns)."""


class Leadership(Collector):
    def __init__(self, lease: Lease, shard: int = 0, shards: int = 1) -> None:
        self.lease = lease
        self.shard, self.shards = shard, shards
        alone = BACKFILLS if shards == 1 else SHARDED_LEADER_JOBS
        self.singletons = frozenset(SINGLETONS + alone)
        self._was: bool | None = None
        self.on_follow: list[Callable[[], None]] = []
        """What to forget when this collector stops leading (the gauges of the singleton jobs:
        a former leader must not export a ranking that no longer moves)."""

    async def keep(self) -> dict[str, Any]:
        """Hold the lease (or take it when free); logged when this collector starts or stops
        leading."""
        leading = await self.lease.hold()
        if leading != self._was:
            log.info(
                "leading" if leading else "following",
                collector=self.lease.holder,
                epoch=self.lease.epoch,
            )
            if self._was and not leading:
                for forget in self.on_follow:
                    forget()
            self._was = leading
        return {"leading": leading, "epoch": self.lease.epoch}

    def gate(self, name: str, job: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """``job`` when ``name`` is a singleton: run only while this collector leads."""
        if name not in self.singletons:
            return job

        async def led() -> Any:
            if not self.lease.leading:
                return {"skipped": "another collector leads"}
            return await job()

        return led

    def collect(self) -> Iterator[Metric]:
        leader = GaugeMetricFamily(
            "movers_leader",
            "1 while this collector holds the lease and runs the singleton jobs (movers refresh, "
            "pairs, tuning, market signals, maintenance, backfill), else 0.",
            labels=["collector"],
        )
        leader.add_metric([self.lease.holder], 1.0 if self.lease.leading else 0.0)
        yield leader
        elections = CounterMetricFamily(
            "movers_lease_elections",
            "Times this collector took the lease.",
        )
        elections.add_metric([], float(self.lease.elections))
        yield elections
        yield GaugeMetricFamily(
            "movers_shard_index",
            "The shard of the markets this collector owns (cluster.shard.index).",
            value=self.shard,
        )
        yield GaugeMetricFamily(
            "movers_shard_count",
            "Shards the markets are shared out in (cluster.shard.count).",
            value=self.shards,
        )
