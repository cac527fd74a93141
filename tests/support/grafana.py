"""Grafana's query expansion, as documented, for running the dashboards' queries in tests.

SQL (PostgreSQL datasource): ``$__timeFilter(col)``, ``$__timeFrom()``, ``$__timeTo()``,
``$__timeGroupAlias(col, $__interval)`` (``time_bucket`` with TimescaleDB mode on, else the
epoch-floor form), ``$__interval``; template variables as ``$name`` or ``${name}``: a multi-value
or include-all variable becomes a comma-separated list of quoted strings, "All" becomes its custom
``allValue`` verbatim, a single value is inserted as it is. PromQL: ``$__rate_interval``,
``$__interval``, ``$__range`` and template variables.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "grafana" / "dashboards"
ALL = "$__all"


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)

    def iso(self, moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smhd])", text).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def _interval_text(interval: timedelta) -> str:
    return f"{int(interval.total_seconds())}s"


def format_variable(value: str | list[str], variable: dict[str, Any]) -> str:
    """A template variable's value as Grafana's SQL datasources interpolate it."""
    values = value if isinstance(value, list) else [value]
    if values == [ALL] and "allValue" in variable:
        return str(variable["allValue"])
    if variable.get("multi") or variable.get("includeAll"):
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return values[0]


def substitute(text: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        text = text.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return text


def expand_sql(
    sql: str, span: TimeRange, values: dict[str, str], timescale: bool, search: str = ""
) -> str:
    def group(match: re.Match[str]) -> str:
        column, interval = (part.strip() for part in match.group(1).split(","))
        interval = interval.strip("'")
        seconds = (
            int(span.interval.total_seconds()) if interval == "$__interval" else _seconds(interval)
        )
        if timescale:
            return f"time_bucket('{seconds}s', {column}) AS \"time\""
        return f'floor(extract(epoch from {column})/{seconds})*{seconds} AS "time"'

    sql = re.sub(r"\$__timeGroupAlias\(([^)]*)\)", group, sql)
    sql = re.sub(
        r"\$__timeFilter\(([^)]*)\)",
        lambda m: f"{m.group(1)} BETWEEN '{span.iso(span.start)}' AND '{span.iso(span.end)}'",
        sql,
    )
    sql = sql.replace("$__timeFrom()", f"'{span.iso(span.start)}'")
    sql = sql.replace("$__timeTo()", f"'{span.iso(span.end)}'")
    sql = sql.replace("$__interval", f"'{_interval_text(span.interval)}'")
    # A query variable's search box: what is typed, then "%"; "%" alone before anything is typed.
    sql = sql.replace("$__searchFilter", search + "%")
    expanded = substitute(sql, values)
    assert "$" not in expanded.replace("$$", ""), f"unexpanded macro or variable: {expanded}"
    return expanded


def expand_promql(expr: str, span: TimeRange, rate_interval: str) -> str:
    range_seconds = int((span.end - span.start).total_seconds())
    expr = expr.replace("$__rate_interval", rate_interval)
    expr = expr.replace("$__interval", _interval_text(span.interval))
    expanded = expr.replace("$__range", f"{range_seconds}s")
    assert "$__" not in expanded, expanded
    return expanded


def promql_expressions() -> list[tuple[str, str, str]]:
    """``(dashboard, panel title, expr)`` for every Prometheus query of every dashboard."""
    found = []
    for name, board in dashboards().items():
        for panel in panels(board):
            for target in panel.get("targets", []):
                if "expr" in target:
                    found.append((name, panel["title"], target["expr"]))
    return found


def run_query(conn: psycopg.Connection[Any], sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = conn.execute(sql)
    columns = [c.name for c in cur.description or []]
    return columns, cur.fetchall()


def resolve_variables(
    board: dict[str, Any],
    conn: psycopg.Connection[Any],
    span: TimeRange,
    timescale: bool,
    all_selected: bool,
) -> dict[str, str]:
    """Each variable's value in order: its default, or the first option its query returns; a
    multi-value variable "All" with ``all_selected``, else every option it offers."""
    values: dict[str, str] = {}
    for variable in board["templating"].get("list", []):
        kind = variable["type"]
        if kind in ("custom", "textbox"):
            values[variable["name"]] = format_variable(variable["current"]["value"], variable)
            continue
        sql = expand_sql(variable["query"], span, values, timescale)
        columns, rows = run_query(conn, sql)
        assert rows, f"variable {variable['name']} has no options: {sql}"
        index = columns.index("__value") if "__value" in columns else 0
        options = [str(r[index]) for r in rows]
        if not variable.get("multi"):
            chosen: list[str] = options[:1]
        elif all_selected and variable.get("includeAll"):
            chosen = [ALL]
        else:  # every option picked one by one: the quoted-list form of the IN (...) filters
            chosen = options
        values[variable["name"]] = format_variable(chosen, variable)
    return values


SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "grafana-schemas"
"""Grafana's own dashboard and panel JSON schemas (grafana-foundation-sdk, copied in shared/)."""


def _schema(name: str) -> dict[str, Any]:
    folder = Path(os.environ.get("MOVERS_SHARED_DIR", SCHEMAS.parent)) / "grafana-schemas"
    loaded: dict[str, Any] = json.loads((folder / f"{name}.jsonschema.json").read_text())
    return loaded


def _as_loaded(board: dict[str, Any]) -> dict[str, Any]:
    """The dashboard with what Grafana fills in itself on load, and only that: a panel link's
    ``icon``, ``tooltip`` and ``targetBlank``, a variable's ``current`` text and value."""
    board = json.loads(json.dumps(board))
    for item in [
        *board.get("links", []),
        *(p for p in board["panels"] for p in p.get("links", [])),
    ]:
        item.setdefault("icon", "external link")
        item.setdefault("tooltip", "")
        item.setdefault("targetBlank", False)
        item.setdefault("type", "link")
        for key in ("asDropdown", "includeVars", "keepTime"):
            item.setdefault(key, False)
        item.setdefault("tags", [])
    for variable in board["templating"].get("list", []):
        current = variable.setdefault("current", {})
        current.setdefault("text", "")
        current.setdefault("value", "")
    return board


def _fill_defaults(node: dict[str, Any], value: Any, definitions: dict[str, Any]) -> None:
    """Set each missing required property that has a default in ``node``; recurse into the
    objects present."""
    while "$ref" in node:
        node = definitions[node["$ref"].rsplit("/", 1)[1]]
    if not isinstance(value, dict) or node.get("type") != "object":
        return
    properties = node.get("properties", {})
    for key in node.get("required", []):
        target = properties.get(key, {})
        while "$ref" in target:
            target = definitions[target["$ref"].rsplit("/", 1)[1]]
        if key not in value and "default" in target:
            value[key] = json.loads(json.dumps(target["default"]))
    for key, item in value.items():
        if key in properties:
            _fill_defaults(properties[key], item, definitions)


def schema_errors(board: dict[str, Any]) -> list[str]:
    """Where the dashboard departs from Grafana's dashboard schema, and each panel's options and
    custom field config from its panel type's schema."""
    from jsonschema import Draft7Validator

    def check(schema: dict[str, Any], value: Any, where: str) -> list[str]:
        validator = Draft7Validator(schema)
        return [
            f"{where}/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(value)
        ]

    loaded = _as_loaded(board)
    dashboard = _schema("dashboard")
    # CUE's `_` (any JSON value) comes out of the generator as an object: an override's value
    # ("percentunit", true, a list of links) and a matcher's options (a field name) are any.
    for definition, key in (("DynamicConfigValue", "value"), ("MatcherConfig", "options")):
        dashboard["definitions"][definition]["properties"][key] = {}
    errors = check(dashboard, loaded, "dashboard")
    for panel in loaded["panels"]:
        if panel["type"] == "row":
            continue
        kind = _schema(panel["type"].replace("-", ""))
        definitions = kind["definitions"]
        where = f"panel {panel.get('title')!r} ({panel['type']})"
        # The panel plugin's defaults, which Grafana merges in on load: only options the schema
        # gives a default may be left out.
        _fill_defaults(definitions["Options"], panel.setdefault("options", {}), definitions)
        if "FieldConfig" in definitions:
            custom = panel.setdefault("fieldConfig", {}).setdefault("defaults", {})
            _fill_defaults(definitions["FieldConfig"], custom.setdefault("custom", {}), definitions)
        errors += check(
            {"$ref": "#/definitions/Options", "definitions": definitions},
            panel.get("options", {}), f"{where} options",
        )  # fmt: skip
        if "FieldConfig" in definitions:
            errors += check(
                {"$ref": "#/definitions/FieldConfig", "definitions": definitions},
                panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {}),
                f"{where} fieldConfig.defaults.custom",
            )  # fmt: skip
    return errors
