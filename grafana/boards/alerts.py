"""Alerts: the alert history, every firing and resolved notification, filterable."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, table, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.models import common

from boards.common import (
    COLOUR_TEXT,
    PROM,
    SQL,
    Layout,
    custom_variable,
    dashboard,
    described,
    last_value,
    legend,
    link,
    prom,
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
    predicted = [
        described(
            bargauge.Panel().orientation(common.VizOrientation.HORIZONTAL)
            .display_mode(common.BarGaugeDisplayMode.BASIC).reduce_options(last_value())
            .value_mode(common.BarGaugeValueMode.COLOR).sizing(common.BarGaugeSizing.AUTO),
            title,
            f"{what} The exporter replays the last tune.days (7) of stored prices through "
            "MarketMoveLarge and CategorySurge with the thresholds, for/keep_firing_for and "
            "Alertmanager routes of the files as they are now, and the stored trades through "
            "WhaleTrade and WalletTrade with the signals' settings, every hour; `movers tune` "
            "prints the same and tries other thresholds (README, Alert tuning). all: every "
            "message; a window: the messages it was new in.",
            [prom(f"max by (alertname, window) ({metric})", "{{alertname}} {{window}}",
                  instant=True)],
            source=PROM, unit="short", decimals=decimals,
            no_value="Not replayed yet (a minute after the exporter starts, then hourly)",
        )
        for title, what, metric, decimals in (
            ("Alerts a day at today's thresholds",
             "Notifications a day on average.", "movers_tune_notifications_per_day", 1),
            ("Alerts on the busiest day at today's thresholds",
             "Notifications on the busiest UTC day.", "movers_tune_busiest_day_notifications", 0),
        )
    ]  # fmt: skip
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
        .with_panel(grid.place(over_time, 24, 7))
        .with_panel(grid.place(predicted[0], 12, 6)).with_panel(grid.place(predicted[1], 12, 6))
        .with_panel(grid.place(log, 24, 16))
    )  # fmt: skip
