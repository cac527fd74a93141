"""The hot set: what discovery chose for the fast path, shared by REST jobs and streams.

Discovery :meth:`~HotSet.choose`\\ s it (the top markets by 24 h volume plus the watchlist, among
every open market it knows); the price streams subscribe its :meth:`~HotSet.assets` and report
which of them are :attr:`~HotSet.live`; the hot REST job polls the rest (:meth:`~HotSet.polled`),
so every hot outcome has exactly one price source at a time. A market's assets are what its
venue streams and prices: Polymarket's outcome tokens, Kalshi's market ticker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.config import window_label
from exporter.config.venues import Watch
from exporter.model import Venue


@dataclass(frozen=True, slots=True)
class Known:
    """An open market as of the last discovery."""

    assets: tuple[str, ...]
    volume_24h: float
    liquidity: float | None = None
    slug: str | None = None


WATCH_SERIES = 100
"""Watched-market threshold series at most (an event ticker may stand for many markets)."""


class HotSet:
    """The known markets, the hot ones among them in order, and which assets stream live."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.markets: list[str] = []
        """The hot markets, hottest first (ids: Polymarket conditions, Kalshi tickers)."""
        self.known: Mapping[str, Known] = {}
        """Every open market as of the last discovery."""
        self._hot: frozenset[str] = frozenset()
        self.watches: dict[str, Watch] = {}
        """The watched markets (of the last discovery) and their watchlist entries."""
        self._market_of: dict[str, str] = {}
        self.live: Callable[[], set[str]] = set
        """Assets a live stream connection carries now; a stream sets it when it starts."""

    def choose(
        self,
        known: Mapping[str, Known],
        markets: Sequence[str],
        watches: Mapping[str, Watch] | None = None,
    ) -> None:
        """A discovery's result: every open market, the hot ones in order, and the watched ones
        with their watchlist entry."""
        self.known = known
        self.watches = dict(watches or {})
        self.markets = [m for m in markets if m in known]
        self._hot = frozenset(self.markets)
        self._market_of = {a: m for m, k in known.items() for a in k.assets}

    def __len__(self) -> int:
        return len(self.markets)

    def __iter__(self) -> Iterator[str]:
        return iter(self.markets)

    def __contains__(self, market: object) -> bool:
        return market in self._hot

    def assets(self, limit: int | None = None) -> list[str]:
        """The hot markets' assets in hot-set order, at most ``limit``."""
        found = [a for m in self.markets for a in self.known[m].assets]
        return found if limit is None else found[:limit]

    def polled(self) -> list[str]:
        """The hot assets no live stream carries: the REST job's to poll."""
        live = self.live()
        return [a for a in self.assets() if a not in live]

    def market_of(self, asset: str) -> str | None:
        return self._market_of.get(asset)

    def figures(self, asset: str) -> tuple[float | None, float | None]:
        """The 24 h volume and liquidity of ``asset``'s market, for its price rows."""
        known = self.known.get(self._market_of.get(asset, ""))
        return (known.volume_24h, known.liquidity) if known is not None else (None, None)


def in_hot_sets(hot_sets: Mapping[str, HotSet]) -> Callable[[str], bool]:
    """Whether an outcome (``venue:native id``) belongs to its venue's hot set, the hot markets
    and the watchlist."""

    def watched(outcome: str) -> bool:
        venue, _, native = outcome.partition(":")
        hot = hot_sets.get(venue)
        if hot is None:
            return False
        market = hot.market_of(native)
        return market is not None and market in hot

    return watched


class WatchCollector(Collector):
    """The watched markets' own MarketMoveLarge thresholds, for the rule to compare against
    (bounded: at most :data:`WATCH_SERIES` series)."""

    def __init__(self, hot_sets: Sequence[HotSet]) -> None:
        self.hot_sets = hot_sets

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "movers_watch_threshold_move_pp",
            "MarketMoveLarge's threshold in pp for a watched market and window, from its "
            "watchlist entry (instead of thresholds.yml's).",
            labels=["venue", "market_id", "window"],
        )
        count = 0
        for hot in self.hot_sets:
            for native, watch in sorted(hot.watches.items()):
                for width, pp in sorted(watch.move_pp.items()):
                    if count >= WATCH_SERIES:
                        break
                    family.add_metric([hot.venue.value, f"{hot.venue.value}:{native}",
                                       window_label(width)], pp)  # fmt: skip
                    count += 1
        yield family


def whale_limits(hot_sets: Mapping[str, HotSet]) -> Callable[[str], float | None]:
    """An outcome's own whale threshold, from its watched market's entry (None: the venue's)."""

    def whale(outcome: str) -> float | None:
        venue, _, native = outcome.partition(":")
        hot = hot_sets.get(venue)
        if hot is None or not hot.watches:
            return None
        watch = hot.watches.get(hot.market_of(native) or "")
        return watch.whale if watch is not None else None

    return whale
