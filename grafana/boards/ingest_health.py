"""Ingest Health: the exporter's own health from Prometheus."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, statetimeline, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import common

from boards.common import (
    PROM,
    Layout,
    dashboard,
    described,
    last_value,
    legend,
    prom,
    tooltip,
    value_map,
)

UP = value_map(**{"0": ("down", "red"), "1": ("up", "green")})


def rate(title: str, description: str, expr: str, legend_text: str, unit: str,
         no_value: str = "No data yet") -> timeseries.Panel:  # fmt: skip
    """A thin line per series."""
    panel = (
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.LINE).line_width(1)
        .show_points(common.VisibilityMode.NEVER).fill_opacity(5)
    )  # fmt: skip
    return described(panel, title, description, [prom(expr, legend_text)], source=PROM,
                     unit=unit, no_value=no_value)  # fmt: skip


def states(title: str, description: str, expr: str, legend_text: str,
           no_value: str = "No data yet") -> statetimeline.Panel:  # fmt: skip
    panel = (
        statetimeline.Panel().show_value(common.VisibilityMode.NEVER).legend(legend())
        .tooltip(tooltip())
    )  # fmt: skip
    return described(panel, title, description, [prom(expr, legend_text)], source=PROM,
                     no_value=no_value)  # fmt: skip


def build() -> board.Dashboard:
    grid = Layout()
    runs = described(
        bargauge.Panel().orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.BASIC).reduce_options(last_value())
        .legend(legend()).value_mode(common.BarGaugeValueMode.COLOR)
        .name_placement(common.BarGaugeNamePlacement.AUTO).sizing(common.BarGaugeSizing.AUTO),
        "Job runs in range",
        "Runs of each job in the time range, by outcome.",
        [prom("sum by (job_name, outcome) (increase(movers_job_runs_total[$__range]))",
              "{{job_name}} {{outcome}}", instant=True)],
        source=PROM, unit="short", decimals=0,
    )  # fmt: skip
    panels: list[tuple[timeseries.Panel | statetimeline.Panel | bargauge.Panel, int]] = [
        (rate("Ingest lag",
              "Seconds since the newest stored price of each venue (IngestStale fires past 5 "
              "minutes).",
              "time() - movers_last_snapshot_timestamp_seconds", "{{venue}}", "s"), 12),
        (states("Database", "Whether the exporter's database check succeeds.",
                "movers_database_up", "database").mappings(UP), 6),
        (rate("Rows held in memory",
              "Rows buffered while the database is unreachable, by table; they are written in "
              "order once it is back.",
              "movers_buffer_rows", "{{table}}", "short"), 6),
        (rate("Requests by endpoint",
              "Venue requests per second, by venue and endpoint family.",
              "sum by (venue, endpoint) (rate(movers_venue_requests_total[$__rate_interval]))",
              "{{venue}} {{endpoint}}", "reqps"), 12),
        (rate("Request errors",
              "Requests per second that did not answer 2xx, by venue and status (429, 5xx, "
              "timeout, connection_error, invalid_body, 4xx).",
              'sum by (venue, status) (rate(movers_venue_requests_total{status!="2xx"}'
              "[$__rate_interval]))",
              "{{venue}} {{status}}", "reqps", no_value="No errors"), 12),
        (rate("Rate limits and retries",
              "429 answers, retries and requests given up, per second.",
              'sum by (venue) (rate(movers_venue_requests_total{status="429"}'
              '[$__rate_interval])) or label_replace(sum by (venue) '
              '(rate(movers_venue_retries_total[$__rate_interval])), "venue", "$1 retries", '
              '"venue", "(.*)")',
              "{{venue}}", "reqps", no_value="No 429s or retries"), 12),
        (rate("Request latency p95",
              "95th percentile of venue response time, by endpoint.",
              "histogram_quantile(0.95, sum by (le, venue, endpoint) "
              "(rate(movers_venue_request_duration_seconds_bucket[$__rate_interval])))",
              "{{venue}} {{endpoint}}", "s"), 12),
        (rate("Sweep duration",
              "How long the last full price sweep took (Polymarket tail, Kalshi prices).",
              "movers_sweep_duration_seconds", "{{venue}}", "s"), 12),
        (rate("Rows written and rejected",
              "Rows per second offered to the writer, by table and outcome (written, "
              "duplicate, unchanged, rejected).",
              "sum by (table, outcome) (rate(movers_rows_total[$__rate_interval]))",
              "{{table}} {{outcome}}", "short"), 12),
        (states("Jobs failing", "Each exporter job: failing (its latest run failed) or ok.",
                "movers_job_failing", "{{job_name}}")
         .mappings(value_map(**{"0": ("ok", "green"), "1": ("failing", "red")})), 12),
        (runs, 12),
        (states("Streams",
                "Websocket connections per venue: up or down (shown once streaming is "
                "enabled).",
                "movers_websocket_connected", "{{venue}} {{connection}}",
                no_value="No streams: prices come from REST polling").mappings(UP), 12),
        (rate("Backfill outcomes",
              "History backfill by venue: outcomes still queued, filled by the running (or last) "
              "pass, and found already filled (movers_backfill_outcomes).",
              "sum by (venue, state) (movers_backfill_outcomes)", "{{venue}} {{state}}",
              "short", no_value="Backfill off or not started"), 6),
        (rate("Backfill points written",
              "History points written per second, by venue (duplicates: already stored).",
              "sum by (venue, outcome) (rate(movers_backfill_rows_total[$__rate_interval]))",
              "{{venue}} {{outcome}}", "short", no_value="No history written"), 6),
        (rate("Backfill requests",
              "History requests per second by result: ok, split (too long, asked in halves), "
              "failed (asked again by a later pass; the error is logged).",
              "sum by (venue, result) (rate(movers_backfill_requests_total[$__rate_interval]))",
              "{{venue}} {{result}}", "reqps", no_value="No history requests"), 6),
        (rate("Backfill time left",
              "Seconds the running backfill pass needs still, at its pace so far.",
              "movers_backfill_eta_seconds", "{{venue}}", "s",
              no_value="Backfill off or not started"), 6),
        (rate("Alert notifications",
              "Alerts stored in the alert history per second, by status.",
              "sum by (status) (rate(movers_alert_notifications_total[$__rate_interval]))",
              "{{status}}", "short", no_value="No alert notifications yet"), 12),
        (states("Leader",
                "Which collector holds the lease and runs the singleton jobs (movers refresh, "
                "pairs, tuning, market signals, maintenance): one at a time (README, Running "
                "several collectors). NoLeader fires when none does.",
                "movers_leader", "{{collector}}")
         .mappings(value_map(**{"0": ("follower", "blue"), "1": ("leader", "green")})), 6),
        (rate("Shards collected",
              "Distinct shards of the markets the answering collectors cover, and how many "
              "there are (cluster.shard.count); ShardMissing fires when fewer are covered.",
              'label_replace(count(count_values("shard", movers_shard_index)), "shards", '
              '"covered", "", "") or label_replace(max(movers_shard_count), "shards", "in all", '
              '"", "")',
              "{{shards}}", "short"), 6),
    ]  # fmt: skip
    built = dashboard(
        "movers-ingest", "Ingest Health",
        "The exporter's own health from Prometheus: lag, requests, errors, rows, buffer, jobs, "
        "history backfill, collectors.",
        refresh="30s", time_from="now-3h",
    )  # fmt: skip
    for panel, width in panels:
        built = built.with_panel(grid.place(panel, width, 8))
    return built
