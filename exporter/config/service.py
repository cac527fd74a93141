"""The exporter's own endpoints, alert webhook, logs and category mapping."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from exporter.config.types import PositiveDuration, _keyed, _Section


class MetricsConfig(_Section):
    host: str = "127.0.0.1"
    """Loopback by default: /metrics and the alert-history webhook are for this machine only.
    The image sets 0.0.0.0 (MOVERS__METRICS__HOST) so Prometheus and Alertmanager reach it on
    the compose network."""
    port: int = Field(default=9464, ge=1, le=65535)


class AlertsConfig(_Section):
    webhook_token: SecretStr | None = None
    """When set (``MOVERS_ALERTS_WEBHOOK_TOKEN``), the alert-history webhook wants
    ``Authorization: Bearer <token>``."""


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """auto: readable on a terminal, JSON lines otherwise (containers)."""


class CategoriesConfig(_Section):
    file: Path | None = None
    """A YAML mapping merged over the shipped one (exporter/categories.yaml)."""


class ShardConfig(_Section):
    """This collector's share of the markets: those whose stable hash modulo ``count`` is
    ``index`` (README, Running several collectors)."""

    index: int | Literal["auto"] = 0
    """0 to ``count - 1``; ``auto``: the number ending ``cluster.collector`` (a StatefulSet's
    ``movers-2`` is shard 2)."""
    count: int = Field(default=1, ge=1, le=64)


class ClusterConfig(_Section):
    """Several collectors on one database (README, Running several collectors)."""

    collector: str = Field(default_factory=socket.gethostname, min_length=1, max_length=200)
    """This collector's name in the ``leases`` table, logs and ``movers_leader`` (default: the
    host name, which compose and Kubernetes make unique)."""
    lease_every: PositiveDuration = timedelta(seconds=10)
    """How often a collector checks the lease (keeps it, or takes it when free): a leader that
    dies is replaced within this."""
    shard: ShardConfig = ShardConfig()

    @property
    def shard_index(self) -> int:
        """The shard this collector owns (``shard.index`` resolved)."""
        if self.shard.index != "auto":
            return self.shard.index
        found = re.search(r"(\d+)$", self.collector)
        return int(found.group(1)) if found else -1

    @model_validator(mode="after")
    def _shard_fits(self) -> ClusterConfig:
        index = self.shard_index
        if index < 0:
            why = f"auto, but the collector name {self.collector!r} does not end in a number"
            raise _keyed([("shard.index", why)])
        if index >= self.shard.count:
            why = f"{index} is not below shard.count ({self.shard.count})"
            raise _keyed([("shard.index", why)])
        return self


class TuneConfig(_Section):
    """``movers tune`` and its hourly replay for Grafana: which alerting files it reads."""

    rules: Path = Path("/etc/alerting/rules")
    """The alert rules folder Prometheus loads (compose mounts ./alertmanager at /etc/alerting;
    outside a container ``movers tune`` falls back to ./alertmanager/rules)."""
    alertmanager: Path = Path("/etc/alerting/alertmanager.yml")
    every: PositiveDuration | None = timedelta(hours=1)
    """How often the exporter replays the last ``days`` for the Alerts dashboard (null: never)."""
    days: float = Field(default=7.0, gt=0, le=90)
