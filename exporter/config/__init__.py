"""Configuration: one YAML file validated by pydantic, with environment overrides for secrets.

One model per concern (``database``, ``venues``, ``service``, ``storage``, ``movers``), the whole
in ``settings``, loading and the environment overlay in ``loading``; durations and the strict
base model in ``types``. The names the rest of the exporter uses are importable from here.
"""

from exporter.config.backfill import BackfillConfig
from exporter.config.database import DatabaseConfig
from exporter.config.loading import (
    ENV_ONLY,
    ENV_OVERRIDES,
    describe_errors,
    load_settings,
    redact_dsn,
    redacted,
    resolve_config_path,
    secret_values,
    validate_settings,
)
from exporter.config.movers import (
    MoverFilter,
    MoverFilters,
    MoversConfig,
    MoversExport,
    window_label,
)
from exporter.config.service import (
    AlertsConfig,
    CategoriesConfig,
    LoggingConfig,
    MetricsConfig,
    TuneConfig,
)
from exporter.config.settings import Settings
from exporter.config.signals import LiquidityConfig, SignalsConfig, VolumeConfig, WhaleConfig
from exporter.config.storage import (
    AGGREGATES,
    CompressionConfig,
    RefreshConfig,
    RefreshPolicy,
    RetentionConfig,
    StorageConfig,
)
from exporter.config.types import (
    DEFAULT_CONFIG_PATH,
    Duration,
    PositiveDuration,
    format_duration,
    parse_duration,
)
from exporter.config.venues import (
    KalshiConfig,
    KalshiStreamConfig,
    PolymarketConfig,
    PolymarketStreamConfig,
    PolymarketTradesStreamConfig,
    RetryConfig,
    VenuesConfig,
)

__all__ = [
    "AGGREGATES", "DEFAULT_CONFIG_PATH", "ENV_ONLY", "ENV_OVERRIDES", "AlertsConfig",
    "BackfillConfig",
    "CategoriesConfig", "CompressionConfig", "DatabaseConfig", "Duration", "KalshiConfig",
    "KalshiStreamConfig", "LiquidityConfig", "LoggingConfig", "MetricsConfig", "MoverFilter",
    "MoverFilters",
    "MoversConfig", "MoversExport", "PolymarketConfig", "PolymarketStreamConfig",
    "PolymarketTradesStreamConfig", "PositiveDuration", "RefreshConfig", "RefreshPolicy",
    "RetentionConfig", "RetryConfig", "Settings", "SignalsConfig", "StorageConfig", "TuneConfig",
    "VenuesConfig", "VolumeConfig", "WhaleConfig",
    "describe_errors", "format_duration", "load_settings", "parse_duration", "redact_dsn",
    "redacted", "resolve_config_path", "secret_values", "validate_settings", "window_label",
]  # fmt: skip
