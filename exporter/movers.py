"""Top movers and category moves, computed in the database and stored for Grafana, the CLI and
the metrics.

For each open outcome and window: ``price_now`` is its latest price, ``price_then`` the last price
at or before ``now - window`` (carried forward through unchanged periods, but only up to
``movers.staleness``), ``move_pp = 100 * (price_now - price_then)``.

The refresh keeps each outcome's price at every boundary (now, and now minus each window) in one
row of ``movers_internal.outcome_prices`` and moves those boundaries forward by reading only the
snapshot rows that crossed them since the last refresh, so its cost follows the rate of change,
not the length of the history. The first refresh of a process (and one after the clock went back)
builds that state in full. The writer reports the oldest row of each statement it commits; when a
refresh already moved past it (a slow page, rows held through an outage), the next one reads
again from there. History backfills (in this process or a ``movers backfill`` command) leave the
same note in the database (``movers_internal.history_written``), with the outcomes they wrote,
which each refresh takes: it reads those outcomes again from there by their key, the others as
usual (or every outcome, when the note names very many).

The work is split into shares of the outcomes (by the hash of their id), one per connection, run
at once: each moves its outcomes' boundaries (``advance_sql``), ranks them and describes its own
top rows in one transaction, and one statement merges the shares' tops and sums (the statements
live in ``storage/movers.py`` and ``sql/queries/movers_*.sql``). Ranking sorts only the
candidates for each group's top (see ``movers_ranked.sql``), and the category aggregates are
summed from the same per-bucket histogram, so one pass over the moves feeds both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import MoversConfig
from exporter.model import CategoryMove, Mover
from exporter.storage.database import Database
from exporter.storage.movers import (
    MoversStore,
    Span,
    merge_spans,
    query_parameters,
    read_categories,
    read_movers,
)
from exporter.storage.turns import Turns

NOW = "now"
OVERLAP = timedelta(seconds=30)
"""Incremental reads of the newest rows start this far before the last refresh, for rows another
process commits a little after the time they carry (this process's writer reports the oldest row
of each statement it commits: see ``rows_stored``). A window's start passes a row only a window
after its time, long after its commit: no overlap there."""
DEEP_OUTCOMES = 40_000
"""Outcomes with new history that a refresh reads again by their key, one descent a boundary
the history can change (a hot-set newcomer's week, the batches a backfill of the universe
commits between two refreshes); past this many it reads every outcome's slices from the oldest
in one scan each. Measured at 150,000 outcomes by 7 days (bench.movers_refresh): every outcome
by key 18.3 s, in one scan 7.9 s, steady 1.1 s; the two cost the same near 55,000."""


@dataclass(frozen=True, slots=True)
class RefreshResult:
    computed_at: datetime
    full: bool
    movers: int
    categories: int
    seconds: float
    shares_seconds: float
    """Until the last share committed (boundaries moved, tops stored); the rest is the merge."""
    waited: float = 0.0
    """Seconds it waited for a background step in flight (see ``storage/turns.py``) before it
    began; not in ``seconds``."""


class MoversRefresher:
    """Recomputes ``movers``, ``category_moves`` and ``category_moves_history``; one per process."""

    def __init__(
        self,
        database: Database,
        config: MoversConfig,
        history_kept: timedelta | None = None,
        concurrency: int = 1,
        watched: Callable[[], Sequence[str]] = list,
        turns: Turns | None = None,
    ) -> None:
        self.database = database
        self.turns = turns
        """Shared with the background work (rollup steps): a refresh goes first."""
        self.watched = watched
        """The watchlists' market ids (the service's hot sets): ranked and exported whatever
        the filters say."""
        self.store = MoversStore(self.database, len(config.labels))
        self.config = config
        self.history_kept = history_kept
        self.concurrency = concurrency
        """Shares of the outcomes a refresh moves and ranks at once, each on its own connection
        (``database.write_concurrency``)."""
        self._marks: dict[str, datetime] = {}
        self._full_done = False
        self._oldest_stored: datetime | None = None
        self._noted: dict[str, Span] = {}
        """Outcomes history was written for, with the span of their new points, not yet read
        again (a refresh that failed leaves them to the next)."""
        self.last: RefreshResult | None = None

    def rows_stored(self, earliest: datetime) -> None:
        """Rows as old as ``earliest`` were stored (told by this process's writer): the next
        refresh reads every boundary from there if it already moved past it (rows held through an
        outage, a page committed slowly), so this process's rows are never missed."""
        old = self._oldest_stored
        self._oldest_stored = earliest if old is None else min(old, earliest)

    def boundaries(self, now: datetime) -> dict[str, datetime]:
        return {NOW: now} | {label: now - width for label, width in self.config.labels.items()}

    def _since(self, boundary: str, at: datetime, oldest: datetime | None) -> datetime:
        """Where a boundary's advance starts reading: at its last position (a little before, for
        the newest rows), or earlier for rows stored since that are older. Never before
        ``at - staleness``: an older row could only become a price too stale to use."""
        since = self._marks[boundary] - (OVERLAP if boundary == NOW else timedelta())
        if oldest is not None:
            # The slice is `time > since`: one tick (PostgreSQL's resolution) before the row.
            since = min(since, oldest - timedelta(microseconds=1))
        return max(since, at - self.config.staleness)

    async def refresh(self, now: datetime | None = None) -> RefreshResult:
        if self.turns is None:
            return await self._refresh(now, 0.0)
        async with self.turns.refresh(self.config.every.total_seconds()) as waited:
            return await self._refresh(now, waited)

    async def _refresh(self, now: datetime | None, waited: float) -> RefreshResult:
        started = time.monotonic()
        moment = now or datetime.now(UTC)
        full = not self._full_done or any(moment < mark for mark in self._marks.values())
        backfilled = await self.store.history_written()
        if backfilled.anywhere is not None:
            self.rows_stored(backfilled.anywhere)
        merge_spans(self._noted, backfilled.outcomes)
        noted, self._noted = self._noted, {}
        if len(noted) > DEEP_OUTCOMES:
            # So many: every outcome read from the oldest, in one scan of each slice, costs
            # less than descents by key.
            self.rows_stored(min(span.oldest for span in noted.values()))
            noted = {}
        # Taken before the shares start: rows noted from here on are seen by this refresh or
        # noted again for the next.
        oldest, self._oldest_stored = self._oldest_stored, None
        params = query_parameters(self.config, moment, self.watched()) | {
            "shares": self.concurrency
        }
        try:
            if full:
                # A failed build leaves a partial state: the next refresh builds again.
                self._full_done = False
            await self.store.clear_shares(rebuild=full)
            await _together(
                [
                    self._share(params | {"share": share}, full, oldest, noted)
                    for share in range(self.concurrency)
                ]
            )
        except BaseException:
            # A share that committed moved its boundaries; moving them again from the old marks
            # changes nothing (a price is replaced only by a newer one).
            if oldest is not None:
                self.rows_stored(oldest)
            merge_spans(self._noted, noted)
            raise
        self._marks = self.boundaries(moment)
        self._full_done = True
        shared = time.monotonic() - started
        if full:
            await self.store.analyze()
        kept, categories = await self.store.merge(
            params, None if self.history_kept is None else moment - self.history_kept
        )
        seconds = time.monotonic() - started
        self.last = RefreshResult(moment, full, kept, categories, seconds, shared, waited)
        return self.last

    async def _share(
        self,
        params: dict[str, Any],
        full: bool,
        oldest: datetime | None,
        noted: dict[str, Span],
    ) -> None:
        """One share of the outcomes: their prices at every boundary moved (or built) to this
        refresh's, then their ranking, in one transaction on its own connection. The outcomes
        history was written for (``noted``) are read again where it can change their prices."""
        boundaries = self.boundaries(params["now"])
        # A full build reads the whole slice a boundary's price can come from.
        since = [
            at - self.config.staleness if full else self._since(boundary, at, oldest)
            for boundary, at in boundaries.items()
        ]
        await self.store.advance_and_rank(
            params, since, list(boundaries.values()), noted if noted and not full else None
        )


async def _together(calls: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``calls`` at once, each on its own pooled connection; when one fails the others still
    finish (committing or rolling back their own transaction), then the first failure is
    raised."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


@dataclass(frozen=True, slots=True)
class MoversView:
    """What ``/metrics`` shows of the last refresh: the exported movers of each window (bounded
    by ``movers.export``) and every category aggregate."""

    movers: tuple[Mover, ...] = ()
    categories: tuple[CategoryMove, ...] = ()
    computed_at: datetime | None = None
    waited: float = 0.0
    """Seconds the refresh waited for its turn (``storage/turns.py``)."""


TITLE_CHARS, OUTCOME_CHARS, URL_CHARS = 200, 100, 300
"""Label values of the info metric are cut to these lengths (a longer URL is left out), so the
scrape stays within ``label_value_length_limit`` (1,024 bytes in prometheus/prometheus.yml)."""


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class MoversJob(Collector):
    """The scheduled refresh: recompute in the database, then reload the exported view, which
    :meth:`collect` serves."""

    def __init__(self, refresher: MoversRefresher) -> None:
        self.refresher = refresher
        self.database = refresher.database
        self.config = refresher.config
        self.view = MoversView()

    def forget(self) -> None:
        """Export nothing until the next refresh (this collector stopped leading: another's
        ranking is the one that counts)."""
        self.view = MoversView()

    async def run(self, now: datetime | None = None) -> dict[str, Any]:
        result = await self.refresher.refresh(now)
        export = self.config.export
        async with self.database.connection() as conn:
            movers = [
                mover
                for window in self.config.labels
                for mover in await read_movers(
                    conn,
                    window,
                    limit=export.max_series,
                    min_abs_move_pp=export.min_abs_move_pp,
                    watched=self.refresher.watched(),
                )
            ]
            categories = await read_categories(conn)
        self.view = MoversView(tuple(movers), tuple(categories), result.computed_at, result.waited)
        return {
            "full": result.full,
            "movers": result.movers,
            "exported": len(movers),
            "seconds": round(result.seconds, 3),
            "shares_seconds": round(result.shares_seconds, 3),
            "waited": round(result.waited, 3),
        }

    def collect(self) -> Iterator[Metric]:
        view = self.view
        move = GaugeMetricFamily(
            "movers_market_move_ratio",
            "Price move over the window as a probability difference (0.12 = +12 pp), for the "
            "top movers with |move| >= movers.export.min_abs_move_pp, at most "
            "movers.export.max_series per window.",
            labels=["venue", "market_id", "window", "category"],
        )
        price = GaugeMetricFamily(
            "movers_market_price_ratio",
            "Latest price (probability 0..1) of each market among the exported movers.",
            labels=["venue", "market_id"],
        )
        info = InfoMetricFamily(
            "movers_market",
            "Title, outcome and link of each market among the exported movers (join with "
            "group_left on venue and market_id).",
            labels=["venue", "market_id", "category", "title", "outcome", "url"],
        )
        seen: set[str] = set()
        series: set[tuple[str, str]] = set()
        for m in view.movers:
            # One series a market and window: of a market of several outcomes, its best-ranked
            # (the read's order); a second with the same labels would be dropped by the scrape.
            if (m.market_id, m.window_label) in series:
                continue
            series.add((m.market_id, m.window_label))
            move.add_metric([m.venue, m.market_id, m.window_label, m.category], m.move_pp / 100)
            if m.market_id not in seen:
                seen.add(m.market_id)
                price.add_metric([m.venue, m.market_id], m.price_now)
                labels = [
                    m.venue,
                    m.market_id,
                    m.category,
                    _cut(m.title, TITLE_CHARS),
                    _cut(m.outcome, OUTCOME_CHARS),
                    m.url if m.url and len(m.url) <= URL_CHARS else "",
                ]
                info.add_metric(labels, {})
        yield from (move, price, info)
        markets = GaugeMetricFamily(
            "movers_category_markets",
            "Markets ranked in the category and window (open, passing the filters).",
            labels=["window", "category"],
        )
        moved = GaugeMetricFamily(
            "movers_category_moved_markets",
            "Markets of the category whose |move| over the window reached "
            "movers.category_threshold_pp.",
            labels=["window", "category"],
        )
        mean = GaugeMetricFamily(
            "movers_category_mean_abs_move_ratio",
            "Volume-weighted mean |move| of the category's markets over the window "
            "(probability difference).",
            labels=["window", "category"],
        )
        for c in view.categories:
            markets.add_metric([c.window_label, c.category], c.markets)
            moved.add_metric([c.window_label, c.category], c.moved)
            mean.add_metric([c.window_label, c.category], c.mean_abs_move_pp / 100)
        yield from (markets, moved, mean)
        if view.computed_at is not None:
            yield GaugeMetricFamily(
                "movers_movers_computed_timestamp_seconds",
                "When the movers shown were computed.",
                value=view.computed_at.timestamp(),
            )
            yield GaugeMetricFamily(
                "movers_refresh_waited_seconds",
                "Seconds the last movers refresh waited for a rollup or aggregate step in flight "
                "before it began (part of the movers_refresh job's duration).",
                value=view.waited,
            )
