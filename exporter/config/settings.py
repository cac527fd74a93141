"""The whole configuration, and the checks that span its sections."""

from __future__ import annotations

from datetime import timedelta

from pydantic import model_validator

from exporter.config.backfill import BackfillConfig
from exporter.config.database import DatabaseConfig
from exporter.config.movers import MoversConfig, window_label
from exporter.config.pairs import PairsConfig
from exporter.config.service import (
    AlertsConfig,
    CategoriesConfig,
    ClusterConfig,
    LoggingConfig,
    MetricsConfig,
    TuneConfig,
)
from exporter.config.signals import SignalsConfig
from exporter.config.storage import StorageConfig
from exporter.config.types import _keyed, _Section, format_duration
from exporter.config.venues import VenuesConfig


class Settings(_Section):
    database: DatabaseConfig = DatabaseConfig()
    venues: VenuesConfig = VenuesConfig()
    categories: CategoriesConfig = CategoriesConfig()
    metrics: MetricsConfig = MetricsConfig()
    alerts: AlertsConfig = AlertsConfig()
    storage: StorageConfig = StorageConfig()
    movers: MoversConfig = MoversConfig()
    backfill: BackfillConfig = BackfillConfig()
    signals: SignalsConfig = SignalsConfig()
    tune: TuneConfig = TuneConfig()
    pairs: PairsConfig = PairsConfig()
    cluster: ClusterConfig = ClusterConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _movers_fit_storage(self) -> Settings:
        problems: list[tuple[str, str]] = []
        if self.movers.staleness < self.storage.heartbeat:
            problems.append(
                (
                    "movers.staleness",
                    f"{format_duration(self.movers.staleness)} is shorter than storage.heartbeat "
                    f"({format_duration(self.storage.heartbeat)}): unchanged prices would count "
                    "as stale between heartbeats",
                )
            )
        kept = self.storage.retention.snapshots
        longest = max(self.movers.windows, default=timedelta(0))
        if kept is not None and longest + self.movers.staleness > kept:
            problems.append(
                (
                    "movers.windows",
                    f"{window_label(longest)} plus movers.staleness reaches past "
                    f"storage.retention.snapshots ({format_duration(kept)})",
                )
            )
        for venue in ("polymarket", "kalshi"):
            for i, watch in enumerate(getattr(self.venues, venue).watchlist):
                for width in watch.move_pp:
                    if width not in self.movers.windows:
                        problems.append((
                            f"venues.{venue}.watchlist.{i}.move_pp",
                            f"{window_label(width)} is not one of movers.windows "
                            f"({', '.join(map(window_label, self.movers.windows))})",
                        ))  # fmt: skip
        if problems:
            raise _keyed(problems)
        return self
