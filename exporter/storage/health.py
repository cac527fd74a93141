"""Whether the database answers, and what it holds: read by a job, served at scrape time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from psycopg_pool import AsyncConnectionPool

from exporter.errors import StorageError
from exporter.storage.database import Database

MARKETS_BY_STATUS = "SELECT venue, status, count(*) FROM markets GROUP BY venue, status"


class DatabaseFigures(Collector):
    """Figures read from the database by the ``database_check`` job."""

    def __init__(self) -> None:
        self.up = False
        self.checked_at: float | None = None
        self.markets: dict[tuple[str, str], int] = {}
        """``(venue, status)`` -> markets stored."""

    async def refresh(self, pool: AsyncConnectionPool[Any]) -> dict[str, int]:
        try:
            async with Database(pool).connection() as conn:
                cur = await conn.execute(MARKETS_BY_STATUS)
                rows = await cur.fetchall()
        except StorageError:
            self.up = False
            self.checked_at = time.time()
            raise
        self.markets = {(venue, status): count for venue, status, count in rows}
        self.up = True
        self.checked_at = time.time()
        return {"markets": sum(self.markets.values())}

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "movers_database_up",
            "1 when the last database check succeeded.",
            value=1.0 if self.up else 0.0,
        )
        markets = GaugeMetricFamily(
            "movers_markets", "Markets stored, by venue and status.", labels=["venue", "status"]
        )
        for (venue, status), count in sorted(self.markets.items()):
            markets.add_metric([venue, status], count)
        yield markets
