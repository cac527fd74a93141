"""What every dashboard shares, on Grafana's own dashboards-as-code library.

The dashboards are built with ``grafana-foundation-sdk``'s typed builders (its PyPI release
follows Grafana 11.6: the classic JSON model, ``schemaVersion`` 41, which Grafana 13 loads and
migrates). It has no typed query for the PostgreSQL data source, so :class:`SqlQuery` is that
one query kind, written as the SDK writes its own. One style everywhere: data sources by uid
only, current panel types, units, a description on every panel and a meaningful "no data" text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as promql

SQL = model.DataSourceRef(type_val="grafana-postgresql-datasource", uid="movers-timescaledb")
PROM = model.DataSourceRef(type_val="prometheus", uid="movers-prometheus")
GRAFANA = model.DataSourceRef(type_val="grafana", uid="-- Grafana --")
FOLDER_TAG = "prediction-movers"
Query = cogbuilder.Builder[cogvariants.Dataquery]


# --- queries ------------------------------------------------------------------------------------


@dataclass
class SqlQuery(cogvariants.Dataquery):
    """A raw SQL query of Grafana's PostgreSQL data source (TimescaleDB)."""

    raw_sql: str
    format: str = "table"
    ref_id: str = "A"

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "datasource": SQL.to_json(), "editorMode": "code",
                "format": self.format, "rawQuery": True, "rawSql": self.raw_sql}  # fmt: skip


class Sql(cogbuilder.Builder[SqlQuery]):
    def __init__(self, query: str, fmt: str = "table", ref: str = "A") -> None:
        self._query = SqlQuery(" ".join(query.split()), fmt, ref)

    def build(self) -> SqlQuery:
        return self._query


def sql(query: str, fmt: str = "table", ref: str = "A") -> Sql:
    """A SQL query; whitespace is folded, so queries read as written here."""
    return Sql(query, fmt, ref)


class _SqlAnnotationTarget(model.AnnotationTarget):
    """The SDK's annotation target has only the built-in data source's fields (tags, limit):
    an annotation from SQL is written as the SQL query."""

    def __init__(self, query: SqlQuery) -> None:
        super().__init__()
        self.query = query

    def to_json(self) -> dict[str, object]:
        return self.query.to_json()


class AnnotationSql(cogbuilder.Builder[model.AnnotationTarget]):
    """Annotations from a SQL query (``time``, ``timeend``, ``text``, ``tags``)."""

    def __init__(self, query: str) -> None:
        self._target = _SqlAnnotationTarget(SqlQuery(" ".join(query.split())))

    def build(self) -> model.AnnotationTarget:
        return self._target


def prom(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> Query:
    """A PromQL query, a range query unless ``instant``."""
    query = (
        prometheus.Dataquery().datasource(PROM).editor_mode(promql.QueryEditorMode.CODE)
        .expr(" ".join(expr.split())).legend_format(legend or "__auto").ref_id(ref)
    )  # fmt: skip
    return query.instant() if instant else query.range()


# --- panels -------------------------------------------------------------------------------------


class PanelBuilder(Protocol):
    """What every panel builder of the SDK offers and the helpers here use."""

    def title(self, title: str) -> Self: ...
    def description(self, description: str) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef) -> Self: ...
    def targets(self, targets: list[Query]) -> Self: ...
    def unit(self, unit: str) -> Self: ...
    def decimals(self, decimals: float) -> Self: ...
    def no_value(self, no_value: str) -> Self: ...
    def grid_pos(self, grid_pos: model.GridPos) -> Self: ...
    def id(self, id_val: int) -> Self: ...
    def thresholds(self, thresholds: cogbuilder.Builder[model.ThresholdsConfig]) -> Self: ...
    def mappings(self, mappings: list[model.ValueMapping]) -> Self: ...
    def override_by_name(self, name: str, properties: list[model.DynamicConfigValue]) -> Self: ...
    def build(self) -> Any: ...


P = TypeVar("P", bound=PanelBuilder)


def described(
    panel: P,
    title: str,
    description: str,
    targets: list[Query],
    *,
    source: model.DataSourceRef,
    unit: str | None = None,
    decimals: int | None = None,
    no_value: str = "No data yet",
) -> P:
    """A panel's title, description, queries, unit and "no data" text."""
    panel = panel.title(title).description(description).datasource(source).targets(targets)
    panel = panel.no_value(no_value)
    if unit is not None:
        panel = panel.unit(unit)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def legend() -> VizLegendOptions:
    return (
        VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM).calcs([])
    )  # fmt: skip


def tooltip() -> VizTooltipOptions:
    return VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.NONE)


def last_value() -> ReduceDataOptions:
    return ReduceDataOptions().calcs(["lastNotNull"])


def steps(*colours: tuple[float | None, str]) -> board.ThresholdsConfig:
    """Absolute thresholds: the colour from each value up (the first from minus infinity)."""
    return (
        board.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=colour) for value, colour in colours])
    )


def value_map(**shown: tuple[str, str]) -> list[model.ValueMapping]:
    """Values shown as text in a colour: ``value=(text, colour)``."""
    return [
        model.ValueMap(
            options={v: model.ValueMappingResult(text=t, color=c) for v, (t, c) in shown.items()}
        )
    ]


def prop(key: str, value: object) -> model.DynamicConfigValue:
    return model.DynamicConfigValue(id_val=key, value=value)


def link(title: str, url: str) -> dict[str, str]:
    return {"title": title, "url": url}


MOVE_COLOURS = [
    {"color": "red", "value": None},
    {"color": "text", "value": 0},
    {"color": "green", "value": 0.000001},
]
DETAIL = (
    "/d/movers-market?var-market=${__data.fields.market_id}"
    "&var-outcome=${__data.fields.outcome_id}&${__url_time_range}"
)
"""Market Detail on the row's outcome (a move of "Yes" opens "Yes", not its mirror), keeping the
time range."""
HIDDEN = prop("custom.hidden", True)
COLOUR_TEXT = prop("custom.cellOptions", {"type": "color-text"})


def detail_link(panel: P, field: str, *before: dict[str, str]) -> P:
    """``field`` links to Market Detail (after the links in ``before``)."""
    return panel.override_by_name(field, [prop("links", [*before, link("Market Detail", DETAIL)])])


def mover_columns(panel: P, names: bool = False) -> P:
    """Units and colours of a movers table's price and move columns; ``url``, ``market_id`` and
    ``outcome_id`` are there for the links only."""

    def label(text: str) -> list[model.DynamicConfigValue]:
        return [prop("displayName", text)] if names else []

    percent = [prop("unit", "percentunit"), prop("decimals", 1)]
    panel = panel.override_by_name("price_then", [*percent, *label("Then")])
    panel = panel.override_by_name("price_now", [*percent, *label("Now")])
    panel = panel.override_by_name("move_pp", [
        prop("unit", "suffix: pp"), prop("decimals", 1), *label("Move"),
        prop("thresholds", {"mode": "absolute", "steps": MOVE_COLOURS}), COLOUR_TEXT,
    ])  # fmt: skip
    for field in ("url", "market_id", "outcome_id"):
        panel = panel.override_by_name(field, [HIDDEN])
    return panel


class Layout:
    """Places panels on Grafana's 24-column grid, left to right, then down, numbering them."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, panel: P, w: int, h: int) -> P:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        placed = panel.grid_pos(model.GridPos(h=h, w=w, x=self.x, y=self.y)).id(self.next_id)
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return placed


# --- variables ----------------------------------------------------------------------------------


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = True,
    include_all: bool = True,
    sort: model.VariableSort = model.VariableSort.ALPHABETICAL_ASC,
    default: str | None = None,
) -> board.QueryVariable:
    """A SQL query variable, refreshed with the time range. A single-value variable starts at
    ``default`` when the query offers it (else at its first option)."""
    variable = (
        board.QueryVariable(name).label(label).datasource(SQL).query(" ".join(query.split()))
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).multi(multi)
        .include_all(include_all).sort(sort)
    )  # fmt: skip
    if default is not None:
        variable = variable.current(model.VariableOption(selected=True, text=default,
                                                         value=default))  # fmt: skip
    elif include_all:
        variable = variable.current(
            model.VariableOption(selected=True, text=["All"], value=["$__all"])
        )
    if include_all:
        # Selected "All" interpolates as this literal, so queries read
        # ('__all' IN ($var) OR column IN ($var)) and work with no options at all yet.
        variable = variable.all_value("'__all'")
    return variable


def custom_variable(name: str, label: str, values: list[str], default: str) -> board.CustomVariable:
    option = model.VariableOption(selected=True, text=default, value=default)
    return (
        board.CustomVariable(name).label(label).values(",".join(values)).multi(False)
        .include_all(False).current(option)
        .options([model.VariableOption(selected=v == default, text=v, value=v) for v in values])
    )  # fmt: skip


def textbox(name: str, label: str, default: str) -> board.TextBoxVariable:
    option = model.VariableOption(selected=True, text=default, value=default)
    return board.TextBoxVariable(name).label(label).default_value(default).current(option)


# The windows the movers refresh stored: movers.windows as configured, whatever it holds, in
# order of width ("5m" < "15m" < "1h" < "24h" < "7d": the labels of config.window_label).
def window() -> board.QueryVariable:
    return query_variable(
        "window",
        "Window",
        """SELECT window_label FROM category_moves GROUP BY window_label
           ORDER BY left(window_label, -1)::numeric * CASE right(window_label, 1)
                    WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 ELSE 86400 END""",
        multi=False,
        include_all=False,
        sort=model.VariableSort.DISABLED,
        default="1h",
    )


def venue() -> board.QueryVariable:
    return query_variable("venue", "Venue", "SELECT DISTINCT venue FROM markets ORDER BY 1")


def category() -> board.QueryVariable:
    return query_variable(
        "category", "Category", "SELECT DISTINCT category FROM markets ORDER BY 1"
    )


# --- dashboards ---------------------------------------------------------------------------------


def dashboard(
    uid: str,
    title: str,
    description: str,
    *,
    refresh: str = "1m",
    time_from: str = "now-6h",
) -> board.Dashboard:
    """A provisioned dashboard of the folder: read-only, shared crosshair, linked to the
    others."""
    folder = (
        board.DashboardLink("Prediction Movers").type(model.DashboardLinkType.DASHBOARDS)
        .tags([FOLDER_TAG]).as_dropdown(True).include_vars(False).keep_time(True)
    )  # fmt: skip
    return (
        board.Dashboard(title).uid(uid).description(description).tags([FOLDER_TAG]).readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR).version(1).refresh(refresh)
        .time(time_from, "now").timezone("browser").fiscal_year_start_month(0)
        .live_now(False).week_start("").link(folder)
    )  # fmt: skip


def rendered(built: board.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model."""
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(built.build()))
    return data
