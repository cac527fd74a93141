"""Configuration: one YAML file validated by pydantic, with environment overrides for secrets.

Resolution order for the file: ``--config PATH``, else ``$MOVERS_CONFIG``, else ``./movers.yaml``
(a missing default file means "all defaults"). Then environment overrides are applied:

- the named variables in ``ENV_OVERRIDES`` (``MOVERS_DATABASE_URL`` and every secret), each also
  readable from a file through ``<NAME>_FILE`` (Docker/Kubernetes secrets);
- any key through ``MOVERS__SECTION__KEY=value`` (double underscores separate the YAML path; the
  value is read as a YAML scalar, so ``off``, ``15s`` and ``9464`` all work).

Unknown keys are errors naming their YAML path; durations accept seconds or ``"15s"``-style strings.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from exporter.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("movers.yaml")

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(value: object) -> timedelta:
    """Read ``90``, ``90.5`` (seconds), ``"15s"``, ``"10m"``, ``"1h30m"``, ``"14d"``, ``"2y"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise PydanticCustomError("duration", "expected a duration such as 15s, 10m, 14d")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return timedelta(seconds=float(text))
        if text and re.fullmatch(rf"(?:{_PART.pattern})+", text):
            total = timedelta()
            for number, unit in _PART.findall(text):
                total += float(number) * _UNITS[unit]
            return total
    raise PydanticCustomError(
        "duration", "expected a duration such as 15s, 10m, 14d, got {value}", {"value": repr(value)}
    )


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`, using the largest unit that divides exactly."""
    micros = round(value.total_seconds() * 1_000_000)
    for unit in ("y", "d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit].total_seconds() * 1_000_000)
        if micros % size == 0 and micros != 0:
            return f"{micros // size}{unit}"
    return f"{value.total_seconds()}s"


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise PydanticCustomError("duration", "must be longer than zero")
    return value


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]


def _keyed(problems: list[tuple[str, str]]) -> PydanticCustomError:
    """An error from a section's validator naming keys relative to that section."""
    return PydanticCustomError("keyed", "; ".join(f"{p}: {why}" for p, why in problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: SecretStr = SecretStr("postgresql://movers@localhost:5432/movers")
    """libpq URL or keyword string; override with ``MOVERS_DATABASE_URL``."""
    timescale: Literal["auto", "require", "off"] = "auto"
    """auto: use what the server offers; require: fail unless every TimescaleDB feature is
    there; off: plain PostgreSQL tables even where TimescaleDB exists."""
    pool_size: int = Field(default=4, ge=1, le=64)
    prepared_statements: bool = True
    """Set false behind PgBouncer in transaction mode (or any server whose sessions are shared)."""
    connect_timeout: PositiveDuration = timedelta(seconds=10)
    write_batch_rows: int = Field(default=5000, ge=100, le=100_000)
    """Rows per insert statement; a bigger write is split into statements of this size."""
    write_concurrency: int = Field(default=2, ge=1, le=64)
    """Statements of one big write in flight at once, each on its own pooled connection; the
    movers refresh also splits its outcomes into this many shares, ranked at once. 1 on a server
    whose sessions are shared."""
    password: SecretStr | None = None
    """The database password, passed to the server beside ``url`` (so it needs no URL escaping);
    only from ``MOVERS_DATABASE_PASSWORD``. A password in ``url`` is used when this is unset."""
    grafana_password: SecretStr | None = None
    """Password the read-only role ``movers_grafana`` gets at start (login enabled); only from
    ``MOVERS_GRAFANA_DB_PASSWORD``. Unset: the role exists but cannot log in."""
    outage_buffer_rows: int = Field(default=500_000, ge=0, le=50_000_000)
    """Rows held in memory while the database is unreachable (about 10 minutes of change-only
    snapshots and trades for the default cadences at ~50k changing outcomes a minute; ~250 bytes
    each); past it the oldest are dropped and counted."""

    @model_validator(mode="after")
    def _concurrency_fits_pool(self) -> DatabaseConfig:
        if self.write_concurrency > self.pool_size:
            raise _keyed(
                [
                    (
                        "write_concurrency",
                        f"{self.write_concurrency} exceeds pool_size ({self.pool_size}): each "
                        "statement in flight needs its own connection",
                    )
                ]
            )
        return self


class RetryConfig(_Section):
    """Retries of 429s, 5xx, timeouts and broken responses: exponential backoff with jitter."""

    attempts: int = Field(default=6, ge=1, le=50)
    wait_initial: PositiveDuration = timedelta(milliseconds=500)
    wait_max: PositiveDuration = timedelta(seconds=15)
    timeout: PositiveDuration = timedelta(seconds=90)
    """Give up on a request (and fail the job run) after this long, whatever attempts remain."""


class PolymarketStreamConfig(_Section):
    """The CLOB market channel for the hot set (API_NOTES 1.7)."""

    enabled: bool = True
    size: int = Field(default=2000, ge=0, le=20_000)
    """Outcomes streamed at most: the hot set's and the watchlist's, in hot-set order."""
    per_connection: int = Field(default=200, ge=1, le=500)
    """Assets per connection; beyond ~500 the venue silently stops sending snapshots."""
    silence: PositiveDuration = timedelta(seconds=60)
    """The watchdog restarts a connection that carried no market data for this long."""
    coalesce: PositiveDuration = timedelta(seconds=1)
    """Updates of one outcome within this are written as one row (its latest)."""
    ping_every: PositiveDuration = timedelta(seconds=10)


class PolymarketTradesStreamConfig(_Section):
    """Trades from the real-time data socket (RTDS ``activity``/``trades``), beside the Data
    API job; the same trade ids, so each trade is stored once."""

    enabled: bool = False
    silence: PositiveDuration = timedelta(seconds=60)
    """The watchdog restarts the connection after this long without a trade."""
    ping_every: PositiveDuration = timedelta(seconds=5)


class _VenueSection(_Section):
    """What every venue's section has: its schedule, its hot set, its requests' patience."""

    enabled: bool = True
    discovery_every: PositiveDuration = timedelta(minutes=15)
    """Enumerate every open market and upsert the metadata (Polymarket: Gamma events, keyset
    paging; Kalshi: series, events and markets)."""
    hot_every: PositiveDuration = timedelta(seconds=15)
    """Refresh the hot set's prices (Polymarket: CLOB books; Kalshi: ``/markets?tickers=…``)."""
    trades_every: PositiveDuration = timedelta(seconds=30)
    hot_size: int = Field(default=200, ge=0, le=10_000)
    """The top N markets by 24 h volume are hot (plus the watchlist)."""
    watchlist: tuple[str, ...] = ()
    """Markets that are always hot (Polymarket: slugs or condition ids; Kalshi: market or event
    tickers)."""
    timeout: PositiveDuration = timedelta(seconds=20)
    retry: RetryConfig = RetryConfig()


class PolymarketConfig(_VenueSection):
    gamma_url: str = "https://gamma-api.polymarket.com"
    clob_url: str = "https://clob.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    ws_url: str = "wss://ws-subscriptions-clob.polymarket.com/ws/market"
    rtds_url: str = "wss://ws-live-data.polymarket.com"
    tail_every: PositiveDuration = timedelta(seconds=60)
    """Refresh every other market's price from Gamma's market fields."""
    slow_response: PositiveDuration = timedelta(seconds=5)
    """Responses slower than this are counted: Polymarket throttles by delaying, not refusing."""
    rate_limit_share: float = Field(default=0.8, gt=0, le=1)
    """Share of each documented per-10 s budget the exporter allows itself."""
    stream: PolymarketStreamConfig = PolymarketStreamConfig()
    trades_stream: PolymarketTradesStreamConfig = PolymarketTradesStreamConfig()


class KalshiStreamConfig(_Section):
    """The websocket for the hot set; it needs an API key (the handshake is signed)."""

    enabled: bool = True
    size: int = Field(default=2000, ge=0, le=100_000)
    """Markets streamed at most: the hot set's and the watchlist's."""
    all_markets: bool = False
    """Subscribe every market (``ticker`` and ``trade`` without a market list) instead of the
    hot set: every open market's quote streams, and the hot REST poll rests while connected."""
    silence: PositiveDuration = timedelta(seconds=60)
    """The watchdog restarts the connection after this long without a message."""
    coalesce: PositiveDuration = timedelta(seconds=1)
    """Updates of one market within this are written as one row (its latest)."""


class KalshiConfig(_VenueSection):
    rest_url: str = "https://api.elections.kalshi.com/trade-api/v2"
    ws_url: str = "wss://api.elections.kalshi.com/trade-api/ws/v2"
    api_key_id: SecretStr | None = None
    """Optional API key id (``MOVERS_KALSHI_API_KEY_ID``); raises limits and enables streaming."""
    private_key_file: Path | None = None
    """RSA private key (PEM) for the API key (``MOVERS_KALSHI_PRIVATE_KEY_FILE``)."""
    private_key: SecretStr | None = None
    """The PEM itself; only from ``MOVERS_KALSHI_PRIVATE_KEY``, never from the file."""
    prices_every: PositiveDuration = timedelta(seconds=60)
    """Every open market's quote from ``/markets`` pages."""
    requests_per_second: float | None = Field(default=None, gt=0, le=1000)
    """One token bucket for every Kalshi read; default 3/s without an API key, 15/s with one."""
    stream: KalshiStreamConfig = KalshiStreamConfig()

    @property
    def budget(self) -> float:
        if self.requests_per_second is not None:
            return self.requests_per_second
        return 15.0 if self.api_key_id is not None else 3.0


class VenuesConfig(_Section):
    polymarket: PolymarketConfig = PolymarketConfig()
    kalshi: KalshiConfig = KalshiConfig()


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


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """auto: readable on a terminal, JSON lines otherwise (containers)."""


class CategoriesConfig(_Section):
    file: Path | None = None
    """A YAML mapping merged over the shipped one (exporter/categories.yaml)."""


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
    every: PositiveDuration = timedelta(minutes=1)
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


class Settings(_Section):
    database: DatabaseConfig = DatabaseConfig()
    venues: VenuesConfig = VenuesConfig()
    categories: CategoriesConfig = CategoriesConfig()
    metrics: MetricsConfig = MetricsConfig()
    alerts: AlertsConfig = AlertsConfig()
    storage: StorageConfig = StorageConfig()
    movers: MoversConfig = MoversConfig()
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
        if problems:
            raise _keyed(problems)
        return self


# Environment variables that set one key each; every one may also be given as <NAME>_FILE.
ENV_OVERRIDES: dict[str, tuple[str, ...]] = {
    "MOVERS_DATABASE_URL": ("database", "url"),
    "MOVERS_DATABASE_PASSWORD": ("database", "password"),
    "MOVERS_KALSHI_API_KEY_ID": ("venues", "kalshi", "api_key_id"),
    "MOVERS_KALSHI_PRIVATE_KEY": ("venues", "kalshi", "private_key"),
    "MOVERS_KALSHI_PRIVATE_KEY_FILE": ("venues", "kalshi", "private_key_file"),
    "MOVERS_ALERTS_WEBHOOK_TOKEN": ("alerts", "webhook_token"),
    "MOVERS_GRAFANA_DB_PASSWORD": ("database", "grafana_password"),
}
# Keys that hold secret material and so must never be written in the YAML file.
ENV_ONLY: dict[tuple[str, ...], str] = {
    ("venues", "kalshi", "private_key"): "MOVERS_KALSHI_PRIVATE_KEY",
    ("alerts", "webhook_token"): "MOVERS_ALERTS_WEBHOOK_TOKEN",
    ("database", "grafana_password"): "MOVERS_GRAFANA_DB_PASSWORD",
    ("database", "password"): "MOVERS_DATABASE_PASSWORD",
}
_GENERIC_PREFIX = "MOVERS__"


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str]) -> tuple[Path, bool]:
    """The file to read and whether it was asked for explicitly (then it must exist)."""
    if cli_path:
        return Path(cli_path), True
    if environ.get("MOVERS_CONFIG"):
        return Path(environ["MOVERS_CONFIG"]), True
    return DEFAULT_CONFIG_PATH, False


def load_settings(
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read, merge and validate the configuration; raise :class:`ConfigError` naming each key."""
    env = os.environ if environ is None else environ
    file_path, explicit = resolve_config_path(str(path) if path else None, env)
    raw: object = {}
    if file_path.exists():
        try:
            raw = yaml.safe_load(file_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else "(file)"
            raise ConfigError([(where, f"not valid YAML: {exc}")], str(file_path)) from exc
    elif explicit:
        raise ConfigError([("(file)", "no such file")], str(file_path))
    if not isinstance(raw, dict):
        raise ConfigError([("(top level)", "must be a mapping of sections")], str(file_path))
    secrets = [
        (".".join(key_path), f"is a secret: set {variable} or use a file, not YAML")
        for key_path, variable in ENV_ONLY.items()
        if _lookup(raw, key_path) is not None
    ]
    if secrets:
        raise ConfigError(secrets, str(file_path))
    merged, origins = _apply_environment(raw, env)
    source = str(file_path) if file_path.exists() else "configuration (defaults + environment)"
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        problems = [_blame(path, why, origins) for path, why in describe_errors(exc)]
        raise ConfigError(problems, source) from None


def _blame(path: str, why: str, origins: Mapping[tuple[str, ...], str]) -> tuple[str, str]:
    """A problem in a key that an environment variable set (or under one it created) is that
    variable's, not the file's."""
    parts = tuple(path.split("."))
    for key_path, variable in origins.items():
        shorter = min(len(parts), len(key_path))
        if parts[:shorter] == key_path[:shorter]:
            return variable, f"{why} (sets {path})"
    return path, why


def validate_settings(data: Mapping[str, Any], source: str = "configuration") -> Settings:
    """Validate a plain mapping; errors name their YAML path."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc), source) from None


def describe_errors(
    exc: ValidationError, root: type[BaseModel] | None = None
) -> list[tuple[str, str]]:
    """``(yaml.path, why)`` for each error; unknown keys get a "did you mean" from ``root``."""
    problems: list[tuple[str, str]] = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "keyed":
            # A section validator reports several keys at once, relative to the section.
            for item in str(error["msg"]).split("; "):
                key, _, why = item.partition(": ")
                problems.append((".".join([*loc, key]), why))
            continue
        path = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            problems.append((path, _unknown_key_message(loc, root or Settings)))
        else:
            problems.append((path, error["msg"]))
    return problems


def _unknown_key_message(loc: list[str], root: type[BaseModel]) -> str:
    model = root
    for part in loc[:-1]:
        if part.isdigit():
            continue  # a list index: the items share the list's model
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field else None
        if inner is None:
            return "unknown key"
        model = inner
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f"unknown key (did you mean {close[0]!r}?)" if close else "unknown key"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, looking through ``list[...]`` and ``... | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> object:
    node: object = data
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _assign(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def _apply_environment(
    raw: Mapping[str, Any], env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The file's data with the environment applied, and which variable set which key path."""
    merged: dict[str, Any] = _deep_copy(raw)
    origins: dict[tuple[str, ...], str] = {}
    for name in sorted(env):
        if name.startswith(_GENERIC_PREFIX):
            path = tuple(part.lower() for part in name[len(_GENERIC_PREFIX) :].split("__"))
            if all(path):
                _assign(merged, path, yaml.safe_load(env[name]) if env[name] else None)
                origins[path] = name
    for variable, path in ENV_OVERRIDES.items():
        value = env.get(variable)
        file_name = env.get(f"{variable}_FILE")
        if value is None and file_name:
            try:
                value = Path(file_name).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError([(f"{variable}_FILE", f"cannot read: {exc.strerror}")]) from None
        if value:
            _assign(merged, path, value)
            origins[path] = variable if env.get(variable) else f"{variable}_FILE"
    return merged, origins


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def redact_dsn(dsn: str) -> str:
    """The connection string with any password replaced by ``***``."""
    if "://" in dsn:
        parts = urlsplit(dsn)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the configuration holds, as logged text would carry it (the logs mask them)."""
    values = [
        item.get_secret_value()
        for item in (
            settings.database.password,
            settings.database.grafana_password,
            settings.venues.kalshi.api_key_id,
            settings.venues.kalshi.private_key,
            settings.alerts.webhook_token,
        )
        if item is not None
    ]
    dsn = settings.database.url.get_secret_value()
    if "://" in dsn:
        password = urlsplit(dsn).password
        if password:
            values += [password, unquote(password)]
    else:
        values += [
            m.strip("'") for m in re.findall(r"(?i)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", dsn)
        ]
    return values


def redacted(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, every secret masked."""
    data = settings.model_dump(mode="json")
    data["database"]["url"] = redact_dsn(settings.database.url.get_secret_value())
    for key in ("password", "grafana_password"):
        if data["database"][key] is not None:
            data["database"][key] = "***"
    kalshi = data["venues"]["kalshi"]
    for key in ("api_key_id", "private_key"):
        if kalshi[key] is not None:
            kalshi[key] = "***"
    if data["alerts"]["webhook_token"] is not None:
        data["alerts"]["webhook_token"] = "***"
    return data
