"""Cross-venue pairs: the same question on Polymarket and Kalshi, side by side.

Every ``pairs.every`` the job finds each pair's two markets among the stored ones (a pair whose
market is not stored yet, whose outcome the market does not have, or whose market closed is
warned about once, counted and skipped), keeps the ``pairs`` table as the file says (Grafana's
``pair_prices`` view joins it with the candles), and reads both latest prices. ``/metrics`` then
has, per pair (at most ``pairs.max_series``), both prices and the spread in pp after orientation:
Polymarket's price less Kalshi's (1 - Kalshi's YES for an inverse pair). PairDivergence alerts
on the spread (alertmanager/rules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import Settings
from exporter.config.pairs import Pair
from exporter.storage.database import Database
from exporter.storage.pairs import PairRow, keep_pairs, latest_prices, stored_markets

log = structlog.get_logger("exporter.pairs")

STATES = ("active", "unknown_market", "unknown_outcome", "closed", "over_cap")
"""What became of each pair of the file at the last run."""


@dataclass(frozen=True, slots=True)
class PairState:
    """A pair as the last run found it: its row, links, and both prices (None: stale)."""

    row: PairRow
    polymarket_url: str
    kalshi_url: str
    polymarket_price: float | None
    kalshi_price: float | None

    @property
    def spread_pp(self) -> float | None:
        if self.polymarket_price is None or self.kalshi_price is None:
            return None
        return round(100 * (self.polymarket_price - self.kalshi_price), 2)


def kalshi_side(price: float, inverse: bool) -> float:
    """Kalshi's YES price as the pair's question reads it."""
    return 1 - price if inverse else price


class PairsJob(Collector):
    """The pairs of ``pairs.file``: resolved, kept in the database, priced for ``/metrics``."""

    def __init__(self, database: Database, settings: Settings, pairs: Sequence[Pair]) -> None:
        self.database = database
        self.settings = settings
        self.pairs = tuple(pairs)
        self.states: list[PairState] = []
        self.counts: Counter[str] = Counter()
        self._kept: tuple[PairRow, ...] | None = None
        self._warned: set[tuple[str, str]] = set()

    def forget(self) -> None:
        """Export nothing until the next run (this collector stopped leading)."""
        self.states, self.counts = [], Counter()

    async def run(self, now: datetime | None = None) -> dict[str, int]:
        moment = now or datetime.now(UTC)
        references = [("polymarket", p.polymarket) for p in self.pairs]
        references += [("kalshi", p.kalshi) for p in self.pairs]
        markets = await stored_markets(self.database, sorted(set(references)))
        counts: Counter[str] = Counter()
        rows: list[tuple[PairRow, str, str]] = []
        for position, pair in enumerate(self.pairs):
            poly = markets.get(("polymarket", pair.polymarket))
            kalshi = markets.get(("kalshi", pair.kalshi))
            if poly is None or kalshi is None:
                missing = pair.polymarket if poly is None else pair.kalshi
                self._skip(pair, "unknown_market", f"no stored market {missing!r}", counts)
                continue
            outcome = next((o for o, name in poly.outcomes
                            if name.casefold() == pair.outcome.casefold()), None)  # fmt: skip
            if outcome is None or not kalshi.outcomes:
                names = ", ".join(name for _, name in poly.outcomes)
                self._skip(pair, "unknown_outcome",
                           f"{poly.title!r} has no outcome {pair.outcome!r} ({names})",
                           counts)  # fmt: skip
                continue
            closed = [m.title for m in (poly, kalshi) if m.status != "open"]
            if closed:
                self._skip(pair, "closed", f"{closed[0]!r} is no longer open", counts)
                continue
            if len(rows) >= self.settings.pairs.max_series:
                self._skip(pair, "over_cap", "beyond pairs.max_series", counts)
                continue
            row = PairRow(
                pair.pair_id, pair.label or poly.title, poly.market_id, outcome,
                kalshi.market_id, kalshi.outcomes[0][0], pair.orientation == "inverse", position,
            )  # fmt: skip
            rows.append((row, poly.url or "", kalshi.url or ""))
            counts["active"] += 1
        kept = tuple(r for r, _, _ in rows)
        if kept != self._kept:
            await keep_pairs(self.database, kept)
            self._kept = kept
        outcomes = [o for r in kept for o in (r.polymarket_outcome_id, r.kalshi_outcome_id)]
        prices = await latest_prices(
            self.database, outcomes, moment - self.settings.movers.staleness
        )
        states = []
        for row, poly_url, kalshi_url in rows:
            poly_price = prices.get(row.polymarket_outcome_id)
            kalshi_price = prices.get(row.kalshi_outcome_id)
            states.append(PairState(
                row, poly_url, kalshi_url,
                None if poly_price is None else poly_price[1],
                None if kalshi_price is None else kalshi_side(kalshi_price[1], row.inverse),
            ))  # fmt: skip
        self.states, self.counts = states, counts
        return dict(counts)

    def _skip(self, pair: Pair, state: str, why: str, counts: Counter[str]) -> None:
        counts[state] += 1
        if (pair.pair_id, state) in self._warned:
            return
        self._warned.add((pair.pair_id, state))
        log.warning("pair skipped", pair=pair.pair_id, state=state, reason=why,
                    note="logged once; counted in movers_pairs{state}")  # fmt: skip

    def collect(self) -> Iterator[Metric]:
        pairs = GaugeMetricFamily(
            "movers_pairs",
            "Pairs of pairs.file by what the last run found: active, unknown_market (not stored "
            "yet), unknown_outcome, closed, over_cap (beyond pairs.max_series).",
            labels=["state"],
        )
        for name in STATES:
            pairs.add_metric([name], self.counts[name])
        labels = ["pair", "label", "polymarket_url", "kalshi_url"]
        spread = GaugeMetricFamily(
            "movers_pair_spread_pp",
            "A pair's spread in pp: Polymarket's price less Kalshi's (1 - YES for an inverse "
            "pair); absent while either price is stale.",
            labels=labels,
        )
        price = GaugeMetricFamily(
            "movers_pair_price_ratio",
            "A pair's price on each venue as the pair's question reads it (probability).",
            labels=["pair", "venue"],
        )
        for state in self.states:
            pair_id = state.row.pair_id
            if state.spread_pp is not None:
                spread.add_metric(
                    [pair_id, state.row.label, state.polymarket_url, state.kalshi_url],
                    state.spread_pp,
                )
            for venue, value in (("polymarket", state.polymarket_price),
                                 ("kalshi", state.kalshi_price)):  # fmt: skip
                if value is not None:
                    price.add_metric([pair_id, venue], value)
        yield pairs
        yield spread
        yield price
