"""Loading the configuration: one YAML file validated by pydantic, with environment overrides
for secrets.

Resolution order for the file: ``--config PATH``, else ``$MOVERS_CONFIG``, else ``./movers.yaml``
(a missing default file means "all defaults"). Then the environment is laid over it, read by
pydantic-settings' sources (later ones win):

- any key through ``MOVERS__SECTION__KEY=value`` (double underscores separate the YAML path;
  pydantic reads scalars such as ``off``, ``15s`` and ``9464``, a list or mapping is read as
  YAML, ``null`` is none);
- the named variables in ``ENV_OVERRIDES`` (``MOVERS_DATABASE_URL`` and every secret), each also
  readable from a file through ``<NAME>_FILE`` (Docker/Kubernetes secrets).

Unknown keys are errors naming their YAML path; durations accept seconds or ``"15s"``-style strings.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from exporter.config.settings import Settings
from exporter.config.types import DEFAULT_CONFIG_PATH
from exporter.errors import ConfigError

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


class _Environment(Settings, BaseSettings):
    """The settings tree as pydantic-settings' sources see it (only its fields and the naming
    of its variables are used: validation is :class:`Settings`')."""

    model_config = SettingsConfigDict(
        env_prefix=_GENERIC_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        env_parse_none_str="null",
    )


class _AnyKey(EnvSettingsSource):
    """``MOVERS__SECTION__KEY=value`` for any key, from ``environ``; lists and mappings as YAML
    (``[5m, 1h]``), as in the file."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(_Environment)
        # The variables it reads: ``environ`` (the process's, or a test's), named as the source
        # names them (lower case, not case-sensitive).
        none = self.env_parse_none_str
        self.env_vars = {k.lower(): None if v == none else v for k, v in environ.items()}

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        return yaml.safe_load(value)


class _NamedVariables(PydanticBaseSettingsSource):
    """The named variables of ``ENV_OVERRIDES``, each or its ``<NAME>_FILE`` twin."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        super().__init__(_Environment)
        self.environ = environ
        self.origins: dict[tuple[str, ...], str] = {}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # every value comes from __call__

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for variable, path in ENV_OVERRIDES.items():
            value = self.environ.get(variable)
            file_name = self.environ.get(f"{variable}_FILE")
            if value is None and file_name:
                try:
                    value = Path(file_name).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    problem = (f"{variable}_FILE", f"cannot read: {exc.strerror}")
                    raise ConfigError([problem]) from None
            if value:
                _assign(data, path, value)
                self.origins[path] = variable if self.environ.get(variable) else f"{variable}_FILE"
        return data


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
    merged, origins, problems = _apply_environment(raw, env)
    source = str(file_path) if file_path.exists() else "configuration (defaults + environment)"
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        problems += [_blame(path, why, origins) for path, why in describe_errors(exc)]
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    return settings


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
) -> tuple[dict[str, Any], dict[tuple[str, ...], str], list[tuple[str, str]]]:
    """The file's data with the environment laid over it, which variable set which key, and
    the variables that name no section (the sources would pass over them in silence)."""
    unknown = [
        (name, _unknown_key_message([section], Settings))
        for name in sorted(env)
        if name.upper().startswith(_GENERIC_PREFIX)
        and (section := name[len(_GENERIC_PREFIX) :].split("__", 1)[0].lower())
        not in Settings.model_fields
    ]
    merged: dict[str, Any] = _deep_copy(raw)
    origins: dict[tuple[str, ...], str] = {}
    for path, value in _leaves(_AnyKey(env)()):
        _assign(merged, path, value)
        origins[path] = _GENERIC_PREFIX + "__".join(path).upper()
    named = _NamedVariables(env)
    for path, value in _leaves(named()):
        _assign(merged, path, value)
    return merged, origins | named.origins, unknown


def _leaves(
    data: Mapping[str, Any], above: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    """Each value of nested mappings with its key path."""
    found: list[tuple[tuple[str, ...], Any]] = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            found += _leaves(value, (*above, key))
        else:
            found.append(((*above, key), value))
    return found


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
