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

from exporter.model import Venue


@dataclass(frozen=True, slots=True)
class Known:
    """An open market as of the last discovery."""

    assets: tuple[str, ...]
    volume_24h: float
    liquidity: float | None = None
    slug: str | None = None


class HotSet:
    """The known markets, the hot ones among them in order, and which assets stream live."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.markets: list[str] = []
        """The hot markets, hottest first (ids: Polymarket conditions, Kalshi tickers)."""
        self.known: Mapping[str, Known] = {}
        """Every open market as of the last discovery."""
        self._hot: frozenset[str] = frozenset()
        self._market_of: dict[str, str] = {}
        self.live: Callable[[], set[str]] = set
        """Assets a live stream connection carries now; a stream sets it when it starts."""

    def choose(self, known: Mapping[str, Known], markets: Sequence[str]) -> None:
        """A discovery's result: every open market, and the hot ones in order."""
        self.known = known
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
