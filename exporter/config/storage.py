"""Storage: heartbeat, rollups, compression, retention and refresh policies."""

from __future__ import annotations

from datetime import timedelta

from pydantic import model_validator

from exporter.config.types import Duration, PositiveDuration, _keyed, _Section, format_duration


class CompressionConfig(_Section):
    """Age after which chunks are compressed (TimescaleDB only); null disables compression."""

    snapshots: PositiveDuration | None = timedelta(days=2)
    trades: PositiveDuration | None = timedelta(days=7)


class RetentionConfig(_Section):
    """How long each relation keeps rows; null keeps them for ever."""

    snapshots: PositiveDuration | None = timedelta(days=14)
    trades: PositiveDuration | None = timedelta(days=90)
    ohlc_1m: PositiveDuration | None = timedelta(days=90)
    ohlc_1h: PositiveDuration | None = timedelta(days=730)
    ohlc_1d: PositiveDuration | None = None


class RefreshPolicy(_Section):
    """A continuous-aggregate refresh window ``[now - start_offset, now - end_offset)``."""

    start_offset: PositiveDuration
    end_offset: Duration
    every: PositiveDuration


class RefreshConfig(_Section):
    ohlc_1m: RefreshPolicy = RefreshPolicy(
        start_offset=timedelta(hours=3),
        end_offset=timedelta(minutes=1),
        every=timedelta(minutes=1),
    )
    ohlc_1h: RefreshPolicy = RefreshPolicy(
        start_offset=timedelta(days=2),
        end_offset=timedelta(hours=1),
        every=timedelta(minutes=30),
    )
    ohlc_1d: RefreshPolicy = RefreshPolicy(
        start_offset=timedelta(days=7),
        end_offset=timedelta(days=1),
        every=timedelta(hours=6),
    )


# Bucket width of each aggregate and the relation it is built from.
AGGREGATES: dict[str, tuple[timedelta, str]] = {
    "ohlc_1m": (timedelta(minutes=1), "snapshots"),
    "ohlc_1h": (timedelta(hours=1), "ohlc_1m"),
    "ohlc_1d": (timedelta(days=1), "ohlc_1h"),
}


class StorageConfig(_Section):
    heartbeat: PositiveDuration = timedelta(minutes=10)
    """An unchanged price is written again after this long, so "unchanged" differs from
    "missing"."""
    compress_after: CompressionConfig = CompressionConfig()
    retention: RetentionConfig = RetentionConfig()
    refresh: RefreshConfig = RefreshConfig()
    maintenance_every: PositiveDuration = timedelta(minutes=1)
    """Cadence of exporter-managed rollups where TimescaleDB policies are unavailable."""

    @model_validator(mode="after")
    def _refresh_inside_retention(self) -> StorageConfig:
        problems: list[tuple[str, str]] = []
        for name, (width, source) in AGGREGATES.items():
            policy: RefreshPolicy = getattr(self.refresh, name)
            path = f"refresh.{name}"
            if policy.end_offset >= policy.start_offset:
                problems.append((f"{path}.end_offset", "must be shorter than start_offset"))
            elif policy.start_offset - policy.end_offset < 2 * width:
                problems.append(
                    (
                        f"{path}.start_offset",
                        f"the refresh window must span at least two {format_duration(width)} "
                        "buckets (start_offset - end_offset)",
                    )
                )
            kept: timedelta | None = getattr(self.retention, source)
            if kept is not None and policy.start_offset >= kept:
                problems.append(
                    (
                        f"{path}.start_offset",
                        f"{format_duration(policy.start_offset)} reaches past "
                        f"retention.{source} ({format_duration(kept)}): refreshing buckets whose "
                        f"{source} rows were already dropped would delete {name} rows",
                    )
                )
        if problems:
            raise _keyed(problems)
        return self
