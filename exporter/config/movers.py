"""Movers: windows, ranking, filters and what the metrics export."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from exporter.config.types import PositiveDuration, _keyed, _Section


def window_label(value: timedelta) -> str:
    """A window's name in tables, metrics and alerts: ``5m``, ``1h``, ``24h``, ``7d``."""
    seconds = round(value.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


class MoverFilter(_Section):
    """Which outcomes may rank, in the venue's own units."""

    min_volume_24h: float = Field(default=0.0, ge=0)
    """Market volume over 24 h (Polymarket: USDC; Kalshi: contracts)."""
    max_spread: float | None = Field(default=None, gt=0, le=1)
    """Widest ask - bid (probability) allowed; null: any, and one-sided books too."""


class MoverFilters(_Section):
    polymarket: MoverFilter = MoverFilter(min_volume_24h=1000, max_spread=0.10)
    kalshi: MoverFilter = MoverFilter(min_volume_24h=100, max_spread=0.10)


class MoversExport(_Section):
    """The mover gauges on ``/metrics``: bounded whatever the universe size."""

    min_abs_move_pp: float = Field(default=3.0, ge=0, le=100)
    max_series: int = Field(default=50, ge=1, le=200)
    """Markets exported per window at most."""


class MoversConfig(_Section):
    windows: tuple[PositiveDuration, ...] = (
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=24),
    )
    every: PositiveDuration = timedelta(seconds=15)
    """Cadence of the movers refresh."""
    staleness: PositiveDuration = timedelta(hours=1)
    """A price is carried forward at most this long: ``price_then`` must have been observed within
    this much before ``now - window``, and ``price_now`` within this much before now."""
    rank_by: Literal["score", "move"] = "score"
    """score: ``|move_pp| * log1p(volume_24h)``; move: ``|move_pp|``."""
    keep: int = Field(default=100, ge=1, le=10_000)
    """Rows kept in ``movers`` per window, venue and category."""
    exclude_resolving_within_window: bool = True
    """Leave out markets whose end time falls within the window from now (deadline drift)."""
    category_threshold_pp: float = Field(default=5.0, ge=0, le=100)
    """A market counts as "moved" in ``category_moves`` from this |move| on."""
    filters: MoverFilters = MoverFilters()
    export: MoversExport = MoversExport()

    @model_validator(mode="after")
    def _distinct_windows(self) -> MoversConfig:
        labels = [window_label(w) for w in self.windows]
        problems: list[tuple[str, str]] = []
        if not labels:
            problems.append(("windows", "name at least one window"))
        if len(set(labels)) != len(labels):
            problems.append(("windows", f"repeated window in {labels}"))
        if any(w.total_seconds() % 1 for w in self.windows):
            problems.append(("windows", "windows are whole seconds"))
        if problems:
            raise _keyed(problems)
        return self

    @property
    def labels(self) -> dict[str, timedelta]:
        return {window_label(w): w for w in self.windows}
