"""Latency histograms: prometheus_client's own, held by the component that observes them and
exported through that component's collector."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import Histogram
from prometheus_client.core import Metric

REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def histogram(
    name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
) -> Histogram:
    """A histogram in no registry: its owner's collector yields it."""
    return Histogram(name, documentation, list(labels), buckets=buckets, registry=None)


def merged(histograms: Iterable[Histogram]) -> Iterator[Metric]:
    """One family over histograms of one name held by several instances of a component (their
    label values differ: a venue's client observes only its own venue)."""
    family: Metric | None = None
    for source in histograms:
        for metric in source.collect():
            if family is None:
                family = metric
            else:
                family.samples.extend(metric.samples)
    if family is not None:
        yield family
