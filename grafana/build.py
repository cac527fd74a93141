"""Generate the provisioned Grafana dashboards (grafana/dashboards/*.json) from this file.

The JSON files are checked in (Grafana reads them); this code is their source, so panels share
one style: datasources by uid only, current panel types, units, a description on every panel and
a meaningful "no data" text. After editing: ``.venv/bin/python grafana/build.py`` (a test fails
while the checked-in JSON differs from what this writes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 41
"""The dashboard schema of Grafana 12.1 (docker-compose.yml pins grafana/grafana:12.1.1)."""
SQL = {"type": "grafana-postgresql-datasource", "uid": "movers-timescaledb"}
PROM = {"type": "prometheus", "uid": "movers-prometheus"}
OUT = Path(__file__).resolve().parent / "dashboards"
FOLDER_TAG = "prediction-movers"

Panel = dict[str, Any]


class Layout:
    """Places panels on Grafana's 24-column grid, left to right, then down."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0
        self.next_id = 1

    def place(self, panel: Panel, w: int, h: int) -> Panel:
        if self.x + w > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["id"] = self.next_id
        self.next_id += 1
        self.x += w
        self.row_height = max(self.row_height, h)
        return panel


def sql_target(query: str, fmt: str = "table", ref: str = "A") -> dict[str, Any]:
    return {"refId": ref, "datasource": SQL, "editorMode": "code", "format": fmt,
            "rawQuery": True, "rawSql": " ".join(query.split())}  # fmt: skip


def prom_target(
    expr: str, legend: str = "", ref: str = "A", instant: bool = False
) -> dict[str, Any]:
    target: dict[str, Any] = {"refId": ref, "datasource": PROM, "editorMode": "code",
                              "expr": " ".join(expr.split()), "legendFormat": legend or "__auto",
                              "range": not instant, "instant": instant}  # fmt: skip
    return target


LEGEND = {"showLegend": True, "displayMode": "list", "placement": "bottom", "calcs": []}
TOOLTIP = {"mode": "multi", "sort": "none"}
PANEL_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {"legend": LEGEND, "tooltip": TOOLTIP},
    "state-timeline": {"legend": LEGEND, "tooltip": TOOLTIP},
    "candlestick": {"legend": LEGEND, "tooltip": TOOLTIP, "fields": {}},
    "barchart": {"legend": LEGEND, "tooltip": TOOLTIP, "stacking": "none",
                 "xTickLabelMaxLength": 0},
    "bargauge": {"legend": LEGEND, "valueMode": "color", "namePlacement": "auto",
                 "sizing": "auto"},
    "stat": {"colorMode": "value", "justifyMode": "auto", "textMode": "auto",
             "percentChangeColorMode": "standard", "orientation": "auto"},
}  # fmt: skip
"""Each panel type's options that Grafana's schema requires and gives no default for, set to
what Grafana's editor starts a new panel with (tests/ops/test_grafana.py validates every dashboard
against the schema); a panel's own options win."""
FIELD_CUSTOM: dict[str, dict[str, Any]] = {"table": {"align": "auto"}}


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merged(base[key], value) if both else value
    return out


def panel(
    kind: str,
    title: str,
    description: str,
    targets: list[dict[str, Any]],
    *,
    unit: str | None = None,
    no_value: str = "No data yet",
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    thresholds: list[dict[str, Any]] | None = None,
    mappings: list[dict[str, Any]] | None = None,
    decimals: int | None = None,
) -> Panel:
    defaults: dict[str, Any] = {"noValue": no_value}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom or kind in FIELD_CUSTOM:
        defaults["custom"] = _merged(FIELD_CUSTOM.get(kind, {}), custom or {})
    if thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
    if mappings:
        defaults["mappings"] = mappings
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": targets[0]["datasource"],
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": _merged(PANEL_OPTIONS.get(kind, {}), options or {}),
    }


def override(field: str, *properties: tuple[str, Any]) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": field},
        "properties": [{"id": key, "value": value} for key, value in properties],
    }


def link(title: str, url: str) -> dict[str, Any]:
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


def detail_link(field: str, *before: dict[str, Any]) -> dict[str, Any]:
    """``field`` links to Market Detail (after the links in ``before``)."""
    return override(field, ("links", [*before, link("Market Detail", DETAIL)]))


def mover_columns(names: bool = False) -> list[dict[str, Any]]:
    """Units and colours of the movers table's price and move columns; ``url`` and
    ``market_id`` and ``outcome_id`` are there for the links only."""
    label = (lambda text: [("displayName", text)]) if names else (lambda text: [])
    return [
        override("price_then", ("unit", "percentunit"), ("decimals", 1), *label("Then")),
        override("price_now", ("unit", "percentunit"), ("decimals", 1), *label("Now")),
        override("move_pp", ("unit", "suffix: pp"), ("decimals", 1), *label("Move"),
                 ("thresholds", {"mode": "absolute", "steps": MOVE_COLOURS}),
                 ("custom.cellOptions", {"type": "color-text"})),
        override("url", ("custom.hidden", True)),
        override("market_id", ("custom.hidden", True)),
        override("outcome_id", ("custom.hidden", True)),
    ]  # fmt: skip


def query_variable(
    name: str,
    label: str,
    query: str,
    *,
    multi: bool = True,
    include_all: bool = True,
    sort: int = 1,
    default: str | None = None,
) -> dict[str, Any]:
    """A SQL query variable; ``sort`` 1 sorts the options alphabetically, 0 keeps the query's
    order. A single-value variable starts at ``default`` when the query offers it (else at its
    first option)."""
    variable: dict[str, Any] = {
        "type": "query", "name": name, "label": label, "datasource": SQL,
        "query": " ".join(query.split()), "definition": " ".join(query.split()),
        "refresh": 2, "multi": multi, "includeAll": include_all, "sort": sort,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if include_all else {},
    }  # fmt: skip
    if default is not None:
        variable["current"] = {"selected": True, "text": default, "value": default}
    if include_all:
        # Selected "All" interpolates as this literal, so queries read
        # ('__all' IN ($var) OR column IN ($var)) and work with no options at all yet.
        variable["allValue"] = "'__all'"
    return variable


def custom_variable(name: str, label: str, values: list[str], default: str) -> dict[str, Any]:
    return {
        "type": "custom", "name": name, "label": label, "query": ",".join(values),
        "multi": False, "includeAll": False,
        "current": {"selected": True, "text": default, "value": default},
        "options": [{"selected": v == default, "text": v, "value": v} for v in values],
    }  # fmt: skip


def textbox(name: str, label: str, default: str) -> dict[str, Any]:
    return {
        "type": "textbox", "name": name, "label": label, "query": default,
        "current": {"text": default, "value": default},
        "options": [{"selected": True, "text": default, "value": default}],
    }  # fmt: skip


# The windows the movers refresh stored: movers.windows as configured, whatever it holds, in
# order of width ("5m" < "15m" < "1h" < "24h" < "7d": the labels of config.window_label).
WINDOW = query_variable(
    "window",
    "Window",
    """SELECT window_label FROM category_moves GROUP BY window_label
       ORDER BY left(window_label, -1)::numeric * CASE right(window_label, 1)
                WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 ELSE 86400 END""",
    multi=False,
    include_all=False,
    sort=0,
    default="1h",
)
VENUE = query_variable("venue", "Venue", "SELECT DISTINCT venue FROM markets ORDER BY 1")
CATEGORY = query_variable(
    "category", "Category", "SELECT DISTINCT category FROM markets ORDER BY 1"
)


def dashboard(
    uid: str,
    title: str,
    description: str,
    panels: list[Panel],
    variables: list[dict[str, Any]],
    *,
    refresh: str = "1m",
    time_from: str = "now-6h",
    annotations: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": [FOLDER_TAG],
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": refresh,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "templating": {"list": variables},
        "annotations": {"list": annotations or []},
        "links": [
            {
                "title": "Prediction Movers",
                "type": "dashboards",
                "tags": [FOLDER_TAG],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
            },
            *(links or []),
        ],
        "panels": panels,
    }


FILTERS = """('__all' IN ($venue) OR venue IN ($venue))
             AND ('__all' IN ($category) OR category IN ($category))"""


def top_movers() -> dict[str, Any]:
    grid = Layout()
    where = f"window_label = '$window' AND {FILTERS} AND coalesce(volume_24h, 0) >= $min_volume"
    panels = [
        grid.place(
            panel(
                "stat",
                "Markets moved ≥ 5 pp",
                "Ranked markets whose price moved by 5 percentage points or more over the window.",
                [
                    sql_target(
                        f"SELECT count(*) AS moved FROM movers WHERE {where} AND abs(move_pp) >= 5"
                    )
                ],
                unit="none",
                options={
                    "reduceOptions": {"calcs": ["lastNotNull"]},
                    "colorMode": "value",
                    "graphMode": "none",
                },
            ),
            6,
            4,
        ),
        grid.place(
            panel(
                "stat",
                "Biggest move",
                "The largest |move| among the filtered movers, in percentage points.",
                [sql_target(f"SELECT max(abs(move_pp)) AS biggest FROM movers WHERE {where}")],
                unit="suffix: pp",
                decimals=1,
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "none"},
            ),
            6,
            4,
        ),
        grid.place(
            panel(
                "stat",
                "Ranking age",
                "How long ago the movers refresh that produced this ranking ran (every minute).",
                [
                    sql_target(
                        "SELECT extract(epoch FROM now() - max(computed_at)) AS age FROM movers"
                    )
                ],
                unit="s",
                no_value="No refresh yet: the first runs about a minute after start",
                thresholds=[
                    {"color": "green", "value": None},
                    {"color": "orange", "value": 180},
                    {"color": "red", "value": 600},
                ],
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "none"},
            ),
            6,
            4,
        ),
        grid.place(
            panel(
                "stat",
                "Outcomes ranked",
                "Rows in the ranking for this window and filters (the top movers.keep per venue "
                "and category).",
                [sql_target(f"SELECT count(*) AS ranked FROM movers WHERE {where}")],
                unit="none",
                options={"reduceOptions": {"calcs": ["lastNotNull"]}, "graphMode": "none"},
            ),
            6,
            4,
        ),
        grid.place(
            panel(
                "table",
                "Top movers",
                "Markets ranked by |move| * ln(1 + 24 h volume) over the window; the market links "
                "to the venue, the outcome to Market Detail.",
                [
                    sql_target(f"""
                SELECT rank, title AS market, outcome, price_then, price_now, move_pp,
                       volume_24h, spread, category, venue, url, market_id, outcome_id
                FROM movers WHERE {where} ORDER BY rank LIMIT 200""")
                ],
                no_value="No movers yet: the first refresh runs about a minute after start, and a "
                "move needs prices older than the window",
                overrides=[
                    *mover_columns(names=True),
                    override(
                        "volume_24h",
                        ("unit", "short"),
                        ("displayName", "Volume 24 h (USD / contracts)"),
                    ),
                    override("spread", ("unit", "percentunit"), ("decimals", 1)),
                    detail_link("market", link("Open on the venue", "${__data.fields.url}")),
                    detail_link("outcome"),
                ],
                options={"showHeader": True, "cellHeight": "sm"},
            ),
            24,
            18,
        ),
    ]
    return dashboard(
        "movers-top", "Top Movers",
        "The biggest price moves per window, venue and category, refreshed every minute.",
        panels,
        [WINDOW, VENUE, CATEGORY, textbox("min_volume", "Min volume 24 h", "0")],
        refresh="15s", time_from="now-1h",
    )  # fmt: skip


def category_trends() -> dict[str, Any]:
    grid = Layout()
    one_category = query_variable(
        "focus", "Category", "SELECT DISTINCT category FROM movers ORDER BY 1",
        multi=False, include_all=False,
    )  # fmt: skip
    panels = [
        grid.place(
            panel(
                "barchart",
                "Mean |move| by category",
                "Volume-weighted mean |move| of each category's ranked markets over the window.",
                [
                    sql_target("""
                SELECT category, mean_abs_move_pp FROM category_moves
                WHERE window_label = '$window' ORDER BY mean_abs_move_pp DESC""")
                ],
                unit="suffix: pp",
                decimals=2,
                options={
                    "orientation": "horizontal",
                    "xField": "category",
                    "showValue": "auto",
                    "legend": {"showLegend": False},
                },
            ),
            12,
            10,
        ),
        grid.place(
            panel(
                "table",
                "Categories",
                "Per category: markets ranked, how many moved by movers.category_threshold_pp (up, "
                "down), and the top mover.",
                [
                    sql_target("""
                SELECT category, markets, moved, moved_up, moved_down, mean_abs_move_pp,
                       top_title, top_move_pp
                FROM category_moves WHERE window_label = '$window' ORDER BY moved DESC""")
                ],
                overrides=[
                    override("mean_abs_move_pp", ("unit", "suffix: pp"), ("decimals", 2)),
                    override("top_move_pp", ("unit", "suffix: pp"), ("decimals", 1)),
                ],
            ),
            12,
            10,
        ),
        grid.place(
            panel(
                "timeseries",
                "Category activity",
                "Markets per category that moved by the category threshold or more over the "
                "window, at each refresh.",
                [
                    sql_target(
                        """
                SELECT $__timeGroupAlias(time, $__interval), category AS metric,
                       max(moved) AS value
                FROM category_moves_history
                WHERE window_label = '$window' AND $__timeFilter(time)
                GROUP BY 1, 2 ORDER BY 1""",
                        fmt="time_series",
                    )
                ],
                unit="none",
                no_value="No history yet: one point per movers refresh",
                custom={
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "showPoints": "never",
                    "spanNulls": True,
                },
            ),
            24,
            9,
        ),
        grid.place(
            panel(
                "table",
                "Top movers in $focus",
                "The category's biggest moves over the window.",
                [
                    sql_target("""
                SELECT category_rank AS rank, title AS market, outcome, price_then, price_now,
                       move_pp, volume_24h, venue, url, market_id, outcome_id
                FROM movers WHERE window_label = '$window' AND category = '$focus'
                ORDER BY category_rank, venue LIMIT 50""")
                ],
                overrides=[*mover_columns(), detail_link("market")],
            ),
            24,
            12,
        ),
    ]
    return dashboard(
        "movers-categories", "Category Trends",
        "How each category moves: mean |move|, activity over time and its top movers.",
        panels, [WINDOW, one_category], time_from="now-24h",
    )  # fmt: skip


# The OHLC level follows the time range: 1m buckets up to 2 days, 1h up to 60 days, then 1d.
_RANGE = "($__timeTo()::timestamptz - $__timeFrom()::timestamptz)"
_LEVELS = (
    ("ohlc_1m", f"{_RANGE} <= interval '2 days'"),
    ("ohlc_1h", f"{_RANGE} > interval '2 days' AND {_RANGE} <= interval '60 days'"),
    ("ohlc_1d", f"{_RANGE} > interval '60 days'"),
)


def _ohlc(columns: str) -> str:
    return (
        " UNION ALL ".join(
            f"SELECT bucket AS time, {columns} FROM {name}"
            f" WHERE outcome_id = '$outcome' AND $__timeFilter(bucket) AND {when}"
            for name, when in _LEVELS
        )
        + " ORDER BY 1"
    )


def market_detail() -> dict[str, Any]:
    grid = Layout()
    # Open markets first, by 24 h volume; typing in the picker searches every market, resolved and
    # long-tail ones included ($__searchFilter is what is typed, followed by %).
    market = query_variable(
        "market", "Market",
        """SELECT title || ' · ' || venue
                  || CASE WHEN status = 'open' THEN '' ELSE ' · ' || status END AS __text,
                  market_id AS __value
           FROM markets
           WHERE title ILIKE '%' || '$__searchFilter' OR market_id LIKE '$__searchFilter'
           ORDER BY status = 'open' DESC, volume_24h DESC NULLS LAST, market_id LIMIT 1000""",
        multi=False, include_all=False, sort=0,
    )  # fmt: skip
    outcome = query_variable(
        "outcome", "Outcome",
        "SELECT name AS __text, outcome_id AS __value FROM outcomes"
        " WHERE market_id = '$market' ORDER BY position",
        multi=False, include_all=False, sort=0,
    )  # fmt: skip
    panels = [
        grid.place(
            panel(
                "table",
                "Market",
                "The market's title, venue, category, status, scheduled end and volume; the title "
                "links to the venue.",
                [
                    sql_target("""
                SELECT title, venue, category, status, end_time, volume_24h, liquidity, url
                FROM markets WHERE market_id = '$market'""")
                ],
                no_value="Pick a market above",
                overrides=[
                    override(
                        "title", ("links", [link("Open on the venue", "${__data.fields.url}")])
                    ),
                    override("url", ("custom.hidden", True)),
                    override("end_time", ("unit", "dateTimeAsIso")),
                    override("volume_24h", ("unit", "short")),
                ],
            ),
            24,
            4,
        ),
        grid.place(
            panel(
                "candlestick",
                "Price",
                "Open, high, low and close of the displayed price; buckets of 1 minute up to a "
                "2-day range, 1 hour up to 60 days, then 1 day.",
                [sql_target(_ohlc("open, high, low, close"), fmt="time_series")],
                unit="percentunit",
                decimals=1,
                no_value="No prices in this range yet",
                options={
                    "mode": "candles",
                    "candleStyle": "candles",
                    "colorStrategy": "open-close",
                    "colors": {"up": "green", "down": "red"},
                    "includeAllFields": False,
                },
            ),
            24,
            10,
        ),
        grid.place(
            panel(
                "timeseries",
                "Bid / ask",
                "Best bid and ask at the end of each bucket (the band between them is the spread), "
                "with the closing price.",
                [sql_target(_ohlc("bid, ask, close AS price"), fmt="time_series")],
                unit="percentunit",
                decimals=1,
                custom={
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "showPoints": "never",
                    "spanNulls": True,
                    "fillOpacity": 0,
                },
                overrides=[
                    override(
                        "bid",
                        ("custom.fillBelowTo", "ask"),
                        ("custom.fillOpacity", 20),
                        ("color", {"mode": "fixed", "fixedColor": "blue"}),
                    ),
                    override("ask", ("color", {"mode": "fixed", "fixedColor": "blue"})),
                ],
            ),
            12,
            8,
        ),
        grid.place(
            panel(
                "timeseries",
                "Volume 24 h",
                "The market's traded volume over the preceding 24 hours (USD on Polymarket, "
                "contracts on Kalshi).",
                [sql_target(_ohlc("volume_24h"), fmt="time_series")],
                unit="short",
                custom={"drawStyle": "line", "showPoints": "never", "spanNulls": True},
            ),
            12,
            8,
        ),
        grid.place(
            panel(
                "table",
                "Recent trades",
                "The outcome's latest trades in the range: taker side, price, size and trader "
                "where the venue publishes one.",
                [
                    sql_target("""
                SELECT time, side, price, size, price * size AS notional, trader FROM trades
                WHERE outcome_id = '$outcome' AND $__timeFilter(time)
                ORDER BY time DESC LIMIT 200""")
                ],
                no_value="No trades in this range",
                overrides=[
                    override("price", ("unit", "percentunit"), ("decimals", 1)),
                    override("notional", ("unit", "currencyUSD")),
                ],
            ),
            24,
            9,
        ),
    ]
    annotations = [
        {"name": "Annotations & Alerts", "builtIn": 1, "type": "dashboard", "enable": True,
         "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
         "datasource": {"type": "grafana", "uid": "-- Grafana --"}},
        {"name": "Alerts", "enable": True, "iconColor": "red", "datasource": SQL,
         "target": sql_target("""
            SELECT starts_at AS time, coalesce(ends_at, now()) AS timeend,
                   alertname || ': ' || coalesce(summary, '') AS text, alertname AS tags
            FROM alerts WHERE market_id = '$market' AND status = 'firing'
              AND $__timeFilter(starts_at) ORDER BY 1""")},
    ]  # fmt: skip
    return dashboard(
        "movers-market", "Market Detail",
        "One market: OHLC candles from the aggregates, bid/ask, volume, trades and its alerts.",
        panels, [market, outcome], time_from="now-24h", annotations=annotations,
    )  # fmt: skip


def _ts(title: str, description: str, expr: str, legend: str, unit: str, **extra: Any) -> Panel:
    return panel("timeseries", title, description, [prom_target(expr, legend)], unit=unit,
                 custom={"drawStyle": "line", "lineWidth": 1, "showPoints": "never",
                         "fillOpacity": 5}, **extra)  # fmt: skip


def ingest_health() -> dict[str, Any]:
    grid = Layout()
    up_map = [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                            "1": {"text": "up", "color": "green"}}}]  # fmt: skip
    panels = [
        grid.place(
            _ts(
                "Ingest lag",
                "Seconds since the newest stored price of each venue (IngestStale "
                "fires past 5 minutes).",
                "time() - movers_last_snapshot_timestamp_seconds",
                "{{venue}}",
                "s",
            ),
            12,
            8,
        ),
        grid.place(
            panel(
                "state-timeline",
                "Database",
                "Whether the exporter's database check succeeds.",
                [prom_target("movers_database_up", "database")],
                mappings=up_map,
                options={"showValue": "never"},
            ),
            6,
            8,
        ),
        grid.place(
            _ts(
                "Rows held in memory",
                "Rows buffered while the database is unreachable, by table; "
                "they are written in order once it is back.",
                "movers_buffer_rows",
                "{{table}}",
                "short",
            ),
            6,
            8,
        ),
        grid.place(
            _ts(
                "Requests by endpoint",
                "Venue requests per second, by venue and endpoint family.",
                "sum by (venue, endpoint) (rate(movers_venue_requests_total[$__rate_interval]))",
                "{{venue}} {{endpoint}}",
                "reqps",
            ),
            12,
            8,
        ),
        grid.place(
            _ts(
                "Request errors",
                "Requests per second that did not answer 2xx, by venue and status "
                "(429, 5xx, timeout, connection_error, invalid_body, 4xx).",
                'sum by (venue, status) (rate(movers_venue_requests_total{status!="2xx"}'
                "[$__rate_interval]))",
                "{{venue}} {{status}}",
                "reqps",
                no_value="No errors",
            ),
            12,
            8,
        ),
        grid.place(
            _ts(
                "Rate limits and retries",
                "429 answers, retries and requests given up, per second.",
                'sum by (venue) (rate(movers_venue_requests_total{status="429"}[$__rate_interval]))'
                " or label_replace(sum by (venue) (rate(movers_venue_retries_total"
                '[$__rate_interval])), "venue", "$1 retries", "venue", "(.*)")',
                "{{venue}}",
                "reqps",
                no_value="No 429s or retries",
            ),
            12,
            8,
        ),
        grid.place(
            _ts(
                "Request latency p95",
                "95th percentile of venue response time, by endpoint.",
                "histogram_quantile(0.95, sum by (le, venue, endpoint) "
                "(rate(movers_venue_request_duration_seconds_bucket[$__rate_interval])))",
                "{{venue}} {{endpoint}}",
                "s",
            ),
            12,
            8,
        ),
        grid.place(
            _ts(
                "Sweep duration",
                "How long the last full price sweep took (Polymarket tail, Kalshi prices).",
                "movers_sweep_duration_seconds",
                "{{venue}}",
                "s",
            ),
            12,
            8,
        ),
        grid.place(
            _ts(
                "Rows written and rejected",
                "Rows per second offered to the writer, by table and "
                "outcome (written, duplicate, unchanged, rejected).",
                "sum by (table, outcome) (rate(movers_rows_total[$__rate_interval]))",
                "{{table}} {{outcome}}",
                "short",
            ),
            12,
            8,
        ),
        grid.place(
            panel(
                "state-timeline",
                "Jobs failing",
                "Each exporter job: failing (its latest run failed) or ok.",
                [prom_target("movers_job_failing", "{{job_name}}")],
                mappings=[
                    {
                        "type": "value",
                        "options": {
                            "0": {"text": "ok", "color": "green"},
                            "1": {"text": "failing", "color": "red"},
                        },
                    }
                ],
                options={"showValue": "never"},
            ),
            12,
            8,
        ),
        grid.place(
            panel(
                "bargauge",
                "Job runs in range",
                "Runs of each job in the time range, by outcome.",
                [
                    prom_target(
                        "sum by (job_name, outcome) (increase(movers_job_runs_total[$__range]))",
                        "{{job_name}} {{outcome}}",
                        instant=True,
                    )
                ],
                unit="short",
                decimals=0,
                options={
                    "orientation": "horizontal",
                    "displayMode": "basic",
                    "reduceOptions": {"calcs": ["lastNotNull"]},
                },
            ),
            12,
            8,
        ),
        grid.place(
            panel(
                "state-timeline",
                "Streams",
                "Websocket connections per venue: up or down (shown once streaming is enabled).",
                [prom_target("movers_websocket_connected", "{{venue}} {{connection}}")],
                mappings=up_map,
                no_value="No streams: prices come from REST polling",
                options={"showValue": "never"},
            ),
            12,
            8,
        ),
        grid.place(
            _ts(
                "Alert notifications",
                "Alerts stored in the alert history per second, by status.",
                "sum by (status) (rate(movers_alert_notifications_total[$__rate_interval]))",
                "{{status}}",
                "short",
                no_value="No alert notifications yet",
            ),
            12,
            8,
        ),
    ]
    return dashboard(
        "movers-ingest", "Ingest Health",
        "The exporter's own health from Prometheus: lag, requests, errors, rows, buffer, jobs.",
        panels, [], refresh="30s", time_from="now-3h",
    )  # fmt: skip


def traders() -> dict[str, Any]:
    grid = Layout()
    where = (
        "t.trader IS NOT NULL AND $__timeFilter(t.time)"
        " AND ('__all' IN ($venue) OR t.venue IN ($venue))"
    )
    panels = [
        grid.place(
            panel(
                "table",
                "Top traders by volume",
                "Wallets by traded notional (price * size) in the range; Polymarket publishes "
                "traders, Kalshi does not.",
                [
                    sql_target(f"""
                SELECT t.trader, sum(t.price * t.size) AS volume, count(*) AS trades,
                       count(DISTINCT t.outcome_id) AS outcomes, max(t.time) AS last_trade
                FROM trades t WHERE {where}
                GROUP BY t.trader ORDER BY volume DESC LIMIT 25""")
                ],
                no_value="No trades with a trader in this range",
                overrides=[
                    override("volume", ("unit", "currencyUSD")),
                    override("last_trade", ("unit", "dateTimeFromNow")),
                ],
            ),
            12,
            12,
        ),
        grid.place(
            panel(
                "table",
                "Top traders by trade count",
                "Wallets by number of trades in the range.",
                [
                    sql_target(f"""
                SELECT t.trader, count(*) AS trades, sum(t.price * t.size) AS volume,
                       count(DISTINCT t.outcome_id) AS outcomes
                FROM trades t WHERE {where}
                GROUP BY t.trader ORDER BY trades DESC LIMIT 25""")
                ],
                no_value="No trades with a trader in this range",
                overrides=[override("volume", ("unit", "currencyUSD"))],
            ),
            12,
            12,
        ),
        grid.place(
            panel(
                "table",
                "Recent large trades",
                "The latest trades with a notional (price * size) of at least the minimum above.",
                [
                    sql_target("""
                SELECT t.time, m.title AS market, o.name AS outcome, t.side, t.price, t.size,
                       t.price * t.size AS notional, t.trader, m.venue, m.market_id,
                       t.outcome_id
                FROM trades t JOIN outcomes o ON o.outcome_id = t.outcome_id
                JOIN markets m ON m.market_id = o.market_id
                WHERE $__timeFilter(t.time) AND t.price * t.size >= $min_notional
                  AND ('__all' IN ($venue) OR t.venue IN ($venue))
                ORDER BY t.time DESC LIMIT 100""")
                ],
                no_value="No trade this large in the range",
                overrides=[
                    override("price", ("unit", "percentunit"), ("decimals", 1)),
                    override("notional", ("unit", "currencyUSD")),
                    detail_link("market"),
                    override("market_id", ("custom.hidden", True)),
                    override("outcome_id", ("custom.hidden", True)),
                ],
            ),
            24,
            12,
        ),
    ]
    return dashboard(
        "movers-traders", "Traders",
        "Who trades most, by volume and count, and the latest large trades.",
        panels, [VENUE, textbox("min_notional", "Min notional", "100")], time_from="now-24h",
    )  # fmt: skip


def alerts() -> dict[str, Any]:
    grid = Layout()
    alertname = query_variable(
        "alertname", "Alert", "SELECT DISTINCT alertname FROM alerts ORDER BY 1"
    )
    status = custom_variable("status", "Status", ["any", "firing", "resolved"], "any")
    where = ("$__timeFilter(time) AND ('__all' IN ($alertname) OR alertname IN ($alertname))"
             " AND ('$status' = 'any' OR status = '$status')")  # fmt: skip
    panels = [
        grid.place(
            panel(
                "timeseries",
                "Notifications over time",
                "Alert notifications per bucket, by alert name.",
                [
                    sql_target(
                        f"""
                SELECT $__timeGroupAlias(time, $__interval), alertname AS metric,
                       count(*) AS value
                FROM alerts WHERE {where} GROUP BY 1, 2 ORDER BY 1""",
                        fmt="time_series",
                    )
                ],
                unit="short",
                no_value="No alerts in this range",
                custom={"drawStyle": "bars", "fillOpacity": 60, "stacking": {"mode": "normal"}},
            ),
            24,
            7,
        ),
        grid.place(
            panel(
                "table",
                "Alert log",
                "Every notification Alertmanager sent, firing and resolved (the exporter's alerts "
                "table); market alerts link to Market Detail.",
                [
                    sql_target(f"""
                SELECT time, status, alertname, severity, venue, category, window_label,
                       summary, market_id, notifications
                FROM alerts WHERE {where} ORDER BY time DESC LIMIT 500""")
                ],
                no_value="No alerts in this range",
                overrides=[
                    override(
                        "summary",
                        (
                            "links",
                            [
                                link(
                                    "Market Detail",
                                    "/d/movers-market?var-market=${__data.fields.market_id}",
                                )
                            ],
                        ),
                    ),
                    override(
                        "status",
                        (
                            "mappings",
                            [
                                {
                                    "type": "value",
                                    "options": {
                                        "firing": {"color": "red", "text": "firing"},
                                        "resolved": {"color": "green", "text": "resolved"},
                                    },
                                }
                            ],
                        ),
                        ("custom.cellOptions", {"type": "color-text"}),
                    ),
                ],
            ),
            24,
            16,
        ),
    ]
    return dashboard(
        "movers-alerts", "Alerts",
        "The alert history: every firing and resolved notification, filterable.",
        panels, [alertname, status], time_from="now-7d",
    )  # fmt: skip


DASHBOARDS = {
    "top-movers.json": top_movers,
    "category-trends.json": category_trends,
    "market-detail.json": market_detail,
    "ingest-health.json": ingest_health,
    "traders.json": traders,
    "alerts.json": alerts,
}


def render() -> dict[str, str]:
    """File name -> JSON text, as checked in."""
    return {name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
            for name, build in DASHBOARDS.items()}  # fmt: skip


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
