"""Latency histograms accumulated in process and exported by the scrape-time collector."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from prometheus_client.core import HistogramMetricFamily

REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histograms:
    """Observations by label values, with fixed bucket bounds (seconds)."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        self._counts: dict[tuple[str, ...], list[int]] = {}
        self._sums: dict[tuple[str, ...], float] = {}

    def observe(self, labels: tuple[str, ...], seconds: float) -> None:
        counts = self._counts.get(labels)
        if counts is None:
            counts = self._counts[labels] = [0] * (len(self.bounds) + 1)
            self._sums[labels] = 0.0
        counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self._sums[labels] += seconds

    def count(self, labels: tuple[str, ...]) -> int:
        return sum(self._counts.get(labels, ()))

    def family(
        self, name: str, documentation: str, label_names: Sequence[str], *parts: Histograms
    ) -> HistogramMetricFamily:
        """One metric family over this and ``parts`` (label values must not overlap)."""
        family = HistogramMetricFamily(name, documentation, labels=list(label_names))
        for source in (self, *parts):
            for labels, counts in sorted(source._counts.items()):
                family.add_metric(
                    list(labels), list(_cumulative(source.bounds, counts)), source._sums[labels]
                )
        return family


def _cumulative(bounds: Sequence[float], counts: Sequence[int]) -> Iterable[tuple[str, float]]:
    running = 0
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        running += count
        yield ("+Inf" if bound == float("inf") else repr(bound), running)
