"""Category Trends: how each category moves, its activity over time and its top movers."""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, table, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import common

from boards.common import (
    SQL,
    Layout,
    dashboard,
    described,
    detail_link,
    legend,
    mover_columns,
    prop,
    query_variable,
    sql,
    tooltip,
    window,
)


def build() -> board.Dashboard:
    grid = Layout()
    focus = query_variable(
        "focus", "Category", "SELECT DISTINCT category FROM movers ORDER BY 1",
        multi=False, include_all=False,
    )  # fmt: skip
    means = described(
        barchart.Panel().orientation(common.VizOrientation.HORIZONTAL).x_field("category")
        .show_value(common.VisibilityMode.AUTO).legend(legend().show_legend(False))
        .tooltip(tooltip()).stacking(common.StackingMode.NONE).x_tick_label_max_length(0),
        "Mean |move| by category",
        "Volume-weighted mean |move| of each category's ranked markets over the window.",
        [sql("""
            SELECT category, mean_abs_move_pp FROM category_moves
            WHERE window_label = '$window' ORDER BY mean_abs_move_pp DESC""")],
        source=SQL, unit="suffix: pp", decimals=2,
    )  # fmt: skip
    categories = (
        described(
            table.Panel().align(common.FieldTextAlignment.AUTO),
            "Categories",
            "Per category: markets ranked, how many moved by movers.category_threshold_pp (up, "
            "down), and the top mover.",
            [
                sql("""
            SELECT category, markets, moved, moved_up, moved_down, mean_abs_move_pp,
                   top_title, top_move_pp
            FROM category_moves WHERE window_label = '$window' ORDER BY moved DESC""")
            ],
            source=SQL,
        )
        .override_by_name("mean_abs_move_pp", [prop("unit", "suffix: pp"), prop("decimals", 2)])
        .override_by_name("top_move_pp", [prop("unit", "suffix: pp"), prop("decimals", 1)])
    )
    activity = described(
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.LINE).line_width(1).fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER).span_nulls(True),
        "Category activity",
        "Markets per category that moved by the category threshold or more over the "
        "window, at each refresh.",
        [sql("""
            SELECT $__timeGroupAlias(time, $__interval), category AS metric,
                   max(moved) AS value
            FROM category_moves_history
            WHERE window_label = '$window' AND $__timeFilter(time)
            GROUP BY 1, 2 ORDER BY 1""", fmt="time_series")],
        source=SQL, unit="none", no_value="No history yet: one point per movers refresh",
    )  # fmt: skip
    top = described(
        table.Panel().align(common.FieldTextAlignment.AUTO),
        "Top movers in $focus",
        "The category's biggest moves over the window.",
        [sql("""
            SELECT category_rank AS rank, title AS market, outcome, price_then, price_now,
                   move_pp, volume_24h, venue, url, market_id, outcome_id
            FROM movers WHERE window_label = '$window' AND category = '$focus'
            ORDER BY category_rank, venue LIMIT 50""")],
        source=SQL,
    )  # fmt: skip
    top = detail_link(mover_columns(top), "market")
    return (
        dashboard(
            "movers-categories", "Category Trends",
            "How each category moves: mean |move|, activity over time and its top movers.",
            time_from="now-24h",
        )
        .with_variable(window()).with_variable(focus)
        .with_panel(grid.place(means, 12, 10)).with_panel(grid.place(categories, 12, 10))
        .with_panel(grid.place(activity, 24, 9)).with_panel(grid.place(top, 24, 12))
    )  # fmt: skip
