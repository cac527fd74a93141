"""Traders: who trades most, by volume and count, and the latest large trades."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import common

from boards.common import (
    HIDDEN,
    SQL,
    Layout,
    dashboard,
    described,
    detail_link,
    prop,
    sql,
    textbox,
    venue,
)

WHERE = (
    "t.trader IS NOT NULL AND $__timeFilter(t.time)"
    " AND ('__all' IN ($venue) OR t.venue IN ($venue))"
)
USD = [prop("unit", "currencyUSD")]


def trades_table(title: str, description: str, query: str, no_value: str) -> table.Panel:
    return described(table.Panel().align(common.FieldTextAlignment.AUTO), title, description,
                     [sql(query)], source=SQL, no_value=no_value)  # fmt: skip


def build() -> board.Dashboard:
    grid = Layout()
    by_volume = (
        trades_table(
            "Top traders by volume",
            "Wallets by traded notional (price * size) in the range; Polymarket publishes "
            "traders, Kalshi does not.",
            f"""SELECT t.trader, sum(t.price * t.size) AS volume, count(*) AS trades,
                   count(DISTINCT t.outcome_id) AS outcomes, max(t.time) AS last_trade
            FROM trades t WHERE {WHERE}
            GROUP BY t.trader ORDER BY volume DESC LIMIT 25""",
            "No trades with a trader in this range",
        )
        .override_by_name("volume", USD)
        .override_by_name("last_trade", [prop("unit", "dateTimeFromNow")])
    )
    by_count = trades_table(
        "Top traders by trade count",
        "Wallets by number of trades in the range.",
        f"""SELECT t.trader, count(*) AS trades, sum(t.price * t.size) AS volume,
                   count(DISTINCT t.outcome_id) AS outcomes
            FROM trades t WHERE {WHERE}
            GROUP BY t.trader ORDER BY trades DESC LIMIT 25""",
        "No trades with a trader in this range",
    ).override_by_name("volume", USD)
    large = trades_table(
        "Recent large trades",
        "The latest trades with a notional (price * size) of at least the minimum above.",
        """SELECT t.time, m.title AS market, o.name AS outcome, t.side, t.price, t.size,
                  t.price * t.size AS notional, t.trader, m.venue, m.market_id, t.outcome_id
           FROM trades t JOIN outcomes o ON o.outcome_id = t.outcome_id
           JOIN markets m ON m.market_id = o.market_id
           WHERE $__timeFilter(t.time) AND t.price * t.size >= $min_notional
             AND ('__all' IN ($venue) OR t.venue IN ($venue))
           ORDER BY t.time DESC LIMIT 100""",
        "No trade this large in the range",
    )
    large = large.override_by_name("price", [prop("unit", "percentunit"), prop("decimals", 1)])
    large = detail_link(large.override_by_name("notional", USD), "market")
    large = large.override_by_name("market_id", [HIDDEN]).override_by_name("outcome_id", [HIDDEN])
    return (
        dashboard(
            "movers-traders", "Traders",
            "Who trades most, by volume and count, and the latest large trades.",
            time_from="now-24h",
        )
        .with_variable(venue()).with_variable(textbox("min_notional", "Min notional", "100"))
        .with_panel(grid.place(by_volume, 12, 12)).with_panel(grid.place(by_count, 12, 12))
        .with_panel(grid.place(large, 24, 12))
    )  # fmt: skip
