"""Alerts: the alert history, every firing and resolved notification, filterable."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.models import common

from boards.common import (
    COLOUR_TEXT,
    SQL,
    Layout,
    custom_variable,
    dashboard,
    described,
    legend,
    link,
    prop,
    query_variable,
    sql,
    tooltip,
)

WHERE = (
    "$__timeFilter(time) AND ('__all' IN ($alertname) OR alertname IN ($alertname))"
    " AND ('$status' = 'any' OR status = '$status')"
)


def build() -> board.Dashboard:
    grid = Layout()
    alertname = query_variable(
        "alertname", "Alert", "SELECT DISTINCT alertname FROM alerts ORDER BY 1"
    )
    status = custom_variable("status", "Status", ["any", "firing", "resolved"], "any")
    over_time = described(
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL)),
        "Notifications over time",
        "Alert notifications per bucket, by alert name.",
        [sql(f"""
            SELECT $__timeGroupAlias(time, $__interval), alertname AS metric,
                   count(*) AS value
            FROM alerts WHERE {WHERE} GROUP BY 1, 2 ORDER BY 1""", fmt="time_series")],
        source=SQL, unit="short", no_value="No alerts in this range",
    )  # fmt: skip
    log = described(
        table.Panel().align(common.FieldTextAlignment.AUTO),
        "Alert log",
        "Every notification Alertmanager sent, firing and resolved (the exporter's alerts "
        "table); market alerts link to Market Detail.",
        [sql(f"""
            SELECT time, status, alertname, severity, venue, category, window_label,
                   summary, market_id, notifications
            FROM alerts WHERE {WHERE} ORDER BY time DESC LIMIT 500""")],
        source=SQL, no_value="No alerts in this range",
    )  # fmt: skip
    detail = link("Market Detail", "/d/movers-market?var-market=${__data.fields.market_id}")
    log = log.override_by_name("summary", [prop("links", [detail])])
    shown = {"firing": {"color": "red", "text": "firing"},
             "resolved": {"color": "green", "text": "resolved"}}  # fmt: skip
    log = log.override_by_name(
        "status", [prop("mappings", [{"type": "value", "options": shown}]), COLOUR_TEXT]
    )
    return (
        dashboard(
            "movers-alerts", "Alerts",
            "The alert history: every firing and resolved notification, filterable.",
            time_from="now-7d",
        )
        .with_variable(alertname).with_variable(status)
        .with_panel(grid.place(over_time, 24, 7)).with_panel(grid.place(log, 24, 16))
    )  # fmt: skip
