"""The exporter's registry: one collector per component, each beside the state it describes.

Every figure is produced at scrape time from live state (or a cache a job refreshes), so label
sets that go away stop being exported. The registry is built here, never global; it describes
each collector as it is registered, so a metric name two components both export fails at start.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.registry import Collector


def build_registry(collectors: Iterable[Collector]) -> CollectorRegistry:
    """A fresh registry over ``collectors``; raises ``ValueError`` naming a duplicated metric."""
    # The histograms' ``_created`` series would be new series nobody reads (and the OpenMetrics
    # format Prometheus negotiates sends them as samples).
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    for collector in collectors:
        registry.register(collector)
    return registry
