"""Streamed quotes coalesced per outcome and written through the change-only writer."""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from exporter.model import Snapshot
from exporter.storage.writer import Writer
from exporter.timing import COMMIT_BUCKETS, histogram


class Coalescer:
    """The latest quote of each outcome not yet written, and how long its oldest unwritten
    update waited (the stream-to-commit latency). An outcome is written at most once per
    ``window``: :meth:`flush` (called several times a window) writes the outcomes whose last
    row is at least that old, so a quiet outcome's update is written within a fraction of the
    window and a busy one's within the window."""

    def __init__(self, venue: str, writer: Writer, window: float = 1.0) -> None:
        self.venue = venue
        self.writer = writer
        self.window = window
        self.pending: dict[str, tuple[Snapshot, float]] = {}
        self.written_at: dict[str, float] = {}
        self.latency = histogram(
            "movers_stream_commit_latency_seconds",
            "From receiving a stream update to committing its row (coalescing included).",
            ["venue"],
            COMMIT_BUCKETS,
        )
        self.rows_written = 0

    def add(self, key: str, snapshot: Snapshot) -> None:
        first = self.pending.get(key, (snapshot, time.monotonic()))[1]
        self.pending[key] = (snapshot, first)

    async def flush(
        self,
        extras: Callable[[str], tuple[float | None, float | None]],
        *,
        force: bool = False,
    ) -> int:
        """Write one row per due outcome (every pending one with ``force``, at shutdown), with
        its market's 24 h volume and liquidity from ``extras(key)``."""
        if not self.pending:
            return 0
        now = time.monotonic()
        due = [
            k for k in self.pending if force or now - self.written_at.get(k, -1e18) >= self.window
        ]
        if not due:
            return 0
        batch = {k: self.pending.pop(k) for k in due}
        rows = []
        for key, (snapshot, _) in batch.items():
            volume, liquidity = extras(key)
            rows.append(msgspec.structs.replace(snapshot, volume_24h=volume, liquidity=liquidity))
        result = await self.writer.write_snapshots(rows)
        done = time.monotonic()
        latency = self.latency.labels(self.venue)
        for key, (_, first) in batch.items():
            latency.observe(done - first)
            self.written_at[key] = now
        self.rows_written += result.written
        return result.written
