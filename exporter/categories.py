"""One small category taxonomy for both venues, mapped from venue labels by an editable YAML file.

The defaults ship as ``exporter/categories.yaml``; ``categories.file`` in the configuration names
a file whose entries are merged over them. Labels that map to nothing fall back to ``Other`` and
are counted, so the mapping can be improved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.errors import ConfigError

OTHER = "Other"
UNMAPPED_KEPT = 1000
"""Distinct unmapped labels remembered (the counter stays bounded whatever the venue sends)."""


class Categories(Collector):
    """Maps venue labels to the taxonomy; counts what it could not map."""

    def __init__(self, taxonomy: list[str], polymarket: dict[str, str], kalshi: dict[str, str]):
        self.taxonomy = taxonomy
        self._polymarket = {k.casefold(): v for k, v in polymarket.items()}
        self._kalshi = {k.casefold(): v for k, v in kalshi.items()}
        self.unmapped: Counter[tuple[str, str]] = Counter()
        """``(venue, label)`` -> how often it mapped to nothing."""

    def polymarket(self, tags: Iterable[tuple[str, str]]) -> str:
        """The category of an event from its tags, given as ``(slug, label)`` in venue order."""
        seen = []
        for slug, label in tags:
            for key in (slug, label):
                category = self._polymarket.get(key.casefold())
                if category is not None:
                    return category
            seen.append(slug or label)
        for label in seen or ["(no tags)"]:
            self._count("polymarket", label)
        return OTHER

    def kalshi(self, series_category: str | None) -> str:
        category = self._kalshi.get((series_category or "").casefold())
        if category is None:
            self._count("kalshi", series_category or "(none)")
            return OTHER
        return category

    def _count(self, venue: str, label: str) -> None:
        key = (venue, label)
        if key in self.unmapped or len(self.unmapped) < UNMAPPED_KEPT:
            self.unmapped[key] += 1

    def collect(self) -> Iterator[Metric]:
        unmapped = CounterMetricFamily(
            "movers_unmapped_category_labels",
            "Venue tags or series categories that mapped to no category (fell back to Other).",
            labels=["venue"],
        )
        totals: Counter[str] = Counter()
        for (venue, _), count in self.unmapped.items():
            totals[venue] += count
        for venue, count in sorted(totals.items()):
            unmapped.add_metric([venue], count)
        yield unmapped


def load_categories(path: Path | None = None) -> Categories:
    """The shipped mapping, with the file at ``path`` merged over it; errors name the key."""
    text = resources.files("exporter").joinpath("categories.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    source = "exporter/categories.yaml"
    if path is not None:
        source = str(path)
        try:
            override = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise ConfigError([("categories.file", f"{path}: {exc.strerror}")]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([("(file)", f"not valid YAML: {exc}")], source) from None
        if not isinstance(override, dict):
            raise ConfigError([("(top level)", "must be a mapping")], source)
        unknown = set(override) - {"categories", "polymarket", "kalshi"}
        if unknown:
            raise ConfigError([(k, "unknown key") for k in sorted(unknown)], source)
        for key in ("polymarket", "kalshi"):
            data[key] = {**data[key], **(override.get(key) or {})}
        if override.get("categories"):
            data["categories"] = override["categories"]
    taxonomy = [str(c) for c in data["categories"]]
    if OTHER not in taxonomy:
        taxonomy.append(OTHER)
    problems = [
        (f"{venue}.{label}", f"{category!r} is not a category ({', '.join(taxonomy)})")
        for venue in ("polymarket", "kalshi")
        for label, category in data[venue].items()
        if category not in taxonomy
    ]
    if problems:
        raise ConfigError(problems, source)
    return Categories(
        taxonomy,
        {str(k): str(v) for k, v in data["polymarket"].items()},
        {str(k): str(v) for k, v in data["kalshi"].items()},
    )
