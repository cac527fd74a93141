"""Top Movers: the biggest price moves per window, venue and category."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import stat, table
from grafana_foundation_sdk.models import common

from boards.common import (
    SQL,
    Layout,
    Query,
    category,
    dashboard,
    described,
    detail_link,
    last_value,
    link,
    mover_columns,
    prop,
    sql,
    steps,
    textbox,
    venue,
    window,
)

FILTERS = """('__all' IN ($venue) OR venue IN ($venue))
             AND ('__all' IN ($category) OR category IN ($category))"""
WHERE = f"window_label = '$window' AND {FILTERS} AND coalesce(volume_24h, 0) >= $min_volume"


def figure(
    title: str,
    description: str,
    query: Query,
    unit: str,
    decimals: int | None = None,
    no_value: str = "No data yet",
) -> stat.Panel:
    """A single number: the last value, no sparkline."""
    panel = (
        stat.Panel().reduce_options(last_value()).color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.NONE).justify_mode(common.BigValueJustifyMode.AUTO)
        .text_mode(common.BigValueTextMode.AUTO).orientation(common.VizOrientation.AUTO)
        .percent_change_color_mode(common.PercentChangeColorMode.STANDARD)
    )  # fmt: skip
    return described(panel, title, description, [query], source=SQL, unit=unit,
                     decimals=decimals, no_value=no_value)  # fmt: skip


def build() -> board.Dashboard:
    grid = Layout()
    moved = figure(
        "Markets moved ≥ 5 pp",
        "Ranked markets whose price moved by 5 percentage points or more over the window.",
        sql(f"SELECT count(*) AS moved FROM movers WHERE {WHERE} AND abs(move_pp) >= 5"),
        unit="none",
    )
    biggest = figure(
        "Biggest move",
        "The largest |move| among the filtered movers, in percentage points.",
        sql(f"SELECT max(abs(move_pp)) AS biggest FROM movers WHERE {WHERE}"),
        unit="suffix: pp",
        decimals=1,
    )
    age = figure(
        "Ranking age",
        "How long ago the movers refresh that produced this ranking ran (every minute).",
        sql("SELECT extract(epoch FROM now() - max(computed_at)) AS age FROM movers"),
        unit="s",
        no_value="No refresh yet: the first runs about a minute after start",
    ).thresholds(steps((None, "green"), (180, "orange"), (600, "red")))
    ranked = figure(
        "Outcomes ranked",
        "Rows in the ranking for this window and filters (the top movers.keep per venue "
        "and category).",
        sql(f"SELECT count(*) AS ranked FROM movers WHERE {WHERE}"),
        unit="none",
    )
    movers = described(
        table.Panel().show_header(True).cell_height(common.TableCellHeight.SM)
        .align(common.FieldTextAlignment.AUTO),
        "Top movers",
        "Markets ranked by |move| * ln(1 + 24 h volume) over the window; the market links "
        "to the venue, the outcome to Market Detail.",
        [sql(f"""
            SELECT rank, title AS market, outcome, price_then, price_now, move_pp,
                   volume_24h, spread, category, venue, url, market_id, outcome_id
            FROM movers WHERE {WHERE} ORDER BY rank LIMIT 200""")],
        source=SQL,
        no_value="No movers yet: the first refresh runs about a minute after start, and a "
        "move needs prices older than the window",
    )  # fmt: skip
    movers = mover_columns(movers, names=True)
    movers = movers.override_by_name(
        "volume_24h", [prop("unit", "short"), prop("displayName", "Volume 24 h (USD / contracts)")]
    )
    movers = movers.override_by_name("spread", [prop("unit", "percentunit"), prop("decimals", 1)])
    movers = detail_link(movers, "market", link("Open on the venue", "${__data.fields.url}"))
    movers = detail_link(movers, "outcome")
    return (
        dashboard(
            "movers-top", "Top Movers",
            "The biggest price moves per window, venue and category, refreshed every minute.",
            refresh="15s", time_from="now-1h",
        )
        .with_variable(window()).with_variable(venue()).with_variable(category())
        .with_variable(textbox("min_volume", "Min volume 24 h", "0"))
        .with_panel(grid.place(moved, 6, 4)).with_panel(grid.place(biggest, 6, 4))
        .with_panel(grid.place(age, 6, 4)).with_panel(grid.place(ranked, 6, 4))
        .with_panel(grid.place(movers, 24, 18))
    )  # fmt: skip
