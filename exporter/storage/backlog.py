"""Rows held while the database is unreachable: bounded, oldest dropped first, written in order."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from typing import Any


class Backlog:
    """Rows the database could not take, in arrival order, up to ``limit`` rows: past it the
    oldest are dropped and counted."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._batches: deque[tuple[str, list[Any]]] = deque()
        self.rows: Counter[str] = Counter()
        """Rows held, by table."""
        self.dropped: Counter[str] = Counter()
        """Rows dropped for want of room, by table (running total)."""

    def __len__(self) -> int:
        return sum(self.rows.values())

    def add(self, table: str, rows: Sequence[Any]) -> list[Any]:
        """Hold ``rows``; returns the rows dropped to make room (oldest first)."""
        self._batches.append((table, list(rows)))
        self.rows[table] += len(rows)
        dropped: list[Any] = []
        while len(self) > self.limit:
            old_table, old_rows = self._batches[0]
            excess = min(len(self) - self.limit, len(old_rows))
            dropped += old_rows[:excess]
            self.dropped[old_table] += excess
            self.rows[old_table] -= excess
            if excess == len(old_rows):
                self._batches.popleft()
            else:
                self._batches[0] = (old_table, old_rows[excess:])
        return dropped

    def peek(self) -> tuple[str, list[Any]] | None:
        return self._batches[0] if self._batches else None

    def pop(self) -> None:
        table, rows = self._batches.popleft()
        self.rows[table] -= len(rows)
