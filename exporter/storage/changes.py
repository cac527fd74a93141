"""Change-only storage: an outcome gets a row when its quote changes, and once a heartbeat."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from exporter.model import (
    Snapshot,
)

Quote = tuple[float, float | None, float | None, float | None]


class ChangeFilter:
    """Decides which snapshots change-only storage keeps; pure, no I/O.

    ``select`` keeps a batch's changed rows and reserves them as in flight, so a batch selected
    while they are being written (another job that saw the same quote) does not keep them again;
    ``remember`` records what was committed and ``release`` ends the reservations of a write,
    so a batch that failed is offered again in full. A missing last trade is unknown, not a
    change: a CLOB book (none) and Gamma's fields (one) alternating on one outcome are the same
    quote.
    """

    def __init__(self, heartbeat: timedelta) -> None:
        self.heartbeat = heartbeat
        self._last: dict[str, tuple[Quote, datetime]] = {}
        self._pending: dict[str, tuple[Quote, datetime]] = {}

    def __len__(self) -> int:
        return len(self._last)

    def select(self, rows: Iterable[Snapshot]) -> tuple[list[Snapshot], int, int]:
        """``(to_write, unchanged, stale)``: stale rows are not newer than the last one kept."""
        overlay: dict[str, tuple[Quote, datetime]] = {}
        keep: list[Snapshot] = []
        unchanged = stale = 0
        for row in rows:
            key = row.outcome_id
            previous = overlay.get(key) or self._newest(key)
            quote = row.quote()
            if previous is not None:
                last_quote, last_time = previous
                if row.time <= last_time:
                    stale += 1
                    continue
                if _same(quote, last_quote) and row.time - last_time < self.heartbeat:
                    unchanged += 1
                    continue
            overlay[key] = (quote, row.time)
            keep.append(row)
        self._pending.update(overlay)
        return keep, unchanged, stale

    def _newest(self, key: str) -> tuple[Quote, datetime] | None:
        last, pending = self._last.get(key), self._pending.get(key)
        if last is None or (pending is not None and pending[1] > last[1]):
            return pending
        return last

    def remember(self, rows: Iterable[Snapshot]) -> None:
        for row in rows:
            previous = self._last.get(row.outcome_id)
            if previous is None or row.time > previous[1]:
                quote = row.quote()
                if quote[3] is None and previous is not None:  # keep the last trade we know
                    quote = (*quote[:3], previous[0][3])
                self._last[row.outcome_id] = (quote, row.time)

    def release(self, rows: Iterable[Snapshot]) -> None:
        """End the reservations ``select`` made for these rows (written, held or failed)."""
        for row in rows:
            pending = self._pending.get(row.outcome_id)
            if pending is not None and pending[1] == row.time:
                del self._pending[row.outcome_id]

    def forget(self, outcome_ids: Iterable[str]) -> None:
        for key in outcome_ids:
            self._last.pop(key, None)
            self._pending.pop(key, None)


def _same(quote: Quote, last: Quote) -> bool:
    """The same price, bid and ask, and no different last trade (an unknown one is no news)."""
    return quote[:3] == last[:3] and (quote[3] is None or last[3] is None or quote[3] == last[3])
