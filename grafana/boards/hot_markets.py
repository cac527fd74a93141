"""Hot Markets: the markets whose 24 h volume and liquidity rise fastest, by venue and category."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import table
from grafana_foundation_sdk.models import common

from boards.common import (
    HIDDEN,
    SQL,
    Layout,
    category,
    dashboard,
    described,
    detail_link,
    prop,
    sql,
    textbox,
    venue,
)

CANDIDATES = 1000
"""Open markets compared, the busiest first: each needs one look-up a day back, so the panels
stay fast whatever the universe."""


def rising(figure: str, label: str, floor: str) -> str:
    """The open markets whose ``figure`` (volume_24h or liquidity) rose most since a day before
    the range's end: now from the market's last sweep, then from its first outcome's price
    rows (each carries the market's figures when it was written)."""
    return f"""
        WITH candidates AS (
            SELECT m.market_id, m.venue, m.category, m.title, m.{figure} AS now_value,
                   first.outcome_id
            FROM markets m
            CROSS JOIN LATERAL (SELECT outcome_id FROM outcomes
                                WHERE outcomes.market_id = m.market_id
                                ORDER BY position LIMIT 1) first
            WHERE m.status = 'open' AND m.{figure} >= {floor}
              AND ('__all' IN ($venue) OR m.venue IN ($venue))
              AND ('__all' IN ($category) OR m.category IN ($category))
            ORDER BY m.{figure} DESC LIMIT {CANDIDATES}
        )
        SELECT c.title AS market, c.venue, c.category, then_row.value AS {label}_day_before,
               c.now_value AS {label}_now, c.now_value - then_row.value AS rise,
               c.now_value / nullif(then_row.value, 0) AS ratio, c.market_id, c.outcome_id
        FROM candidates c
        CROSS JOIN LATERAL (
            SELECT s.{figure} AS value FROM snapshots s
            WHERE s.outcome_id = c.outcome_id AND s.{figure} IS NOT NULL
              AND s.time <= $__timeTo()::timestamptz - interval '24 hours'
              AND s.time > $__timeTo()::timestamptz - interval '8 days'
            ORDER BY s.time DESC LIMIT 1
        ) then_row
        ORDER BY rise DESC NULLS LAST LIMIT 50"""


def build() -> board.Dashboard:
    grid = Layout()
    usd = [prop("unit", "currencyUSD"), prop("decimals", 0)]
    times = [prop("unit", "x"), prop("decimals", 1)]
    volume = described(
        table.Panel().align(common.FieldTextAlignment.AUTO),
        "24 h volume rising fastest",
        "Open markets whose 24 h volume grew most over the last day (now against a day before "
        "the range's end), among the 1,000 busiest with at least the minimum volume; "
        "Polymarket in USDC, Kalshi in contracts. Each opens Market Detail.",
        [sql(rising("volume_24h", "volume", "$min_volume"))],
        source=SQL, no_value="No market with a day of history yet",
    )  # fmt: skip
    liquidity = described(
        table.Panel().align(common.FieldTextAlignment.AUTO),
        "Liquidity rising fastest",
        "Open markets whose order-book liquidity (Polymarket publishes it; Kalshi does not) "
        "grew most over the last day, among the 1,000 most liquid.",
        [sql(rising("liquidity", "liquidity", "0"))],
        source=SQL, no_value="No market with a day of liquidity history yet",
    )  # fmt: skip
    for name in ("volume_day_before", "volume_now", "rise"):
        volume = volume.override_by_name(name, usd)
    for name in ("liquidity_day_before", "liquidity_now", "rise"):
        liquidity = liquidity.override_by_name(name, usd)
    panels = []
    for panel in (volume, liquidity):
        panel = detail_link(panel.override_by_name("ratio", times), "market")
        panel = panel.override_by_name("market_id", [HIDDEN])
        panels.append(panel.override_by_name("outcome_id", [HIDDEN]))
    return (
        dashboard(
            "movers-hot", "Hot Markets",
            "The markets whose 24 h volume and liquidity rise fastest, by venue and category.",
            time_from="now-24h",
        )
        .with_variable(venue()).with_variable(category())
        .with_variable(textbox("min_volume", "Min 24 h volume", "1000"))
        .with_panel(grid.place(panels[0], 24, 12)).with_panel(grid.place(panels[1], 24, 12))
    )  # fmt: skip
