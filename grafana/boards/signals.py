"""Signals: the whale trades, watched wallets' trades, listings and resolutions the exporter
posted to Alertmanager (from the alert history), and what was held back."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.builders import table, timeseries
from grafana_foundation_sdk.builders.common import StackingConfig
from grafana_foundation_sdk.models import common

from boards.common import (
    DETAIL,
    HIDDEN,
    PROM,
    SQL,
    Layout,
    dashboard,
    described,
    legend,
    link,
    prom,
    prop,
    sql,
    tooltip,
    venue,
)

WHERE = (
    "status = 'firing' AND labels->>'area' = 'signals' AND $__timeFilter(time)"
    " AND ('__all' IN ($venue) OR venue IN ($venue))"
)


def number(key: str) -> str:
    """An annotation the exporter writes as a number, read as one (anything else: null)."""
    value = f"annotations->>'{key}'"
    return f"CASE WHEN {value} ~ '\\A-?[0-9]+(\\.[0-9]+)?\\Z' THEN ({value})::float8 END"


def signal_table(title: str, description: str, query: str, no_value: str) -> table.Panel:
    panel = described(
        table.Panel().align(common.FieldTextAlignment.AUTO), title, description, [sql(query)],
        source=SQL, no_value=no_value,
    )  # fmt: skip
    panel = panel.override_by_name("market", [prop("links", [link("Market Detail", DETAIL)])])
    panel = panel.override_by_name("market_id", [HIDDEN])
    return panel.override_by_name("outcome_id", [HIDDEN])


def build() -> board.Dashboard:
    grid = Layout()
    over_time = described(
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL)),
        "Signals over time",
        "Signals the exporter posted to Alertmanager, per bucket, by alert (each is notified "
        "once, in the markets channels).",
        [sql(f"""
            SELECT $__timeGroupAlias(time, $__interval), alertname AS metric, count(*) AS value
            FROM alerts WHERE {WHERE} GROUP BY 1, 2 ORDER BY 1""", fmt="time_series")],
        source=SQL, unit="short", no_value="No signals in this range",
    )  # fmt: skip
    held = described(
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
        .stacking(StackingConfig().mode(common.StackingMode.NORMAL)),
        "Detected and held back",
        "What became of each detected signal: sent, held by a market's cooldown, over the "
        "minute's budget (signals.max_per_minute), or failed to post; both venues.",
        [prom("sum by (signal, result) (increase(movers_signal_notifications_total"
              "[$__rate_interval]))", "{{signal}} {{result}}")],
        source=PROM, unit="short", no_value="No signals detected in this range",
    )  # fmt: skip
    trades = signal_table(
        "Whale and wallet trades",
        "Trades of at least signals.whale.<venue> in notional (price * size), and every "
        "trade of a watched wallet (signals.wallets).",
        f"""SELECT time, alertname AS signal, venue, labels->>'title' AS market,
                   labels->>'outcome' AS outcome, annotations->>'side' AS side,
                   {number("notional")} AS notional, {number("price")} AS price,
                   {number("size")} AS size, annotations->>'wallet' AS wallet, market_id,
                   labels->>'outcome_id' AS outcome_id
            FROM alerts WHERE {WHERE} AND alertname IN ('WhaleTrade', 'WalletTrade')
            ORDER BY time DESC LIMIT 200""",
        "No whale or watched wallet traded in this range",
    )
    trades = trades.override_by_name("notional", [prop("unit", "currencyUSD")])
    trades = trades.override_by_name("price", [prop("unit", "percentunit"), prop("decimals", 1)])
    listed = signal_table(
        "New markets",
        "Markets the venues listed (created within signals.listings.max_age of being found), "
        "of the categories signals.listings.categories follows.",
        f"""SELECT time, venue, category, labels->>'title' AS market, market_id,
                   labels->>'outcome_id' AS outcome_id
            FROM alerts WHERE {WHERE} AND alertname = 'MarketListed'
            ORDER BY time DESC LIMIT 200""",
        "No new market in this range",
    )
    ended = signal_table(
        "Closed and resolved",
        "Markets that stopped trading, with the first outcome's final price.",
        f"""SELECT time, alertname AS signal, venue, category, labels->>'title' AS market,
                   labels->>'outcome' AS outcome, {number("final_price")} AS final_price,
                   market_id, labels->>'outcome_id' AS outcome_id
            FROM alerts WHERE {WHERE} AND alertname IN ('MarketClosed', 'MarketResolved')
            ORDER BY time DESC LIMIT 200""",
        "No market closed or resolved in this range",
    )
    ended = ended.override_by_name(
        "final_price", [prop("unit", "percentunit"), prop("decimals", 1)]
    )
    books = signal_table(
        "Liquidity gaps and volume spikes",
        "Hot and watched books that normally trade tight whose spread widened or lost a side "
        "(signals.liquidity), and markets trading far above their usual volume "
        "(signals.volume).",
        f"""SELECT time, alertname AS signal, venue, labels->>'title' AS market,
                   labels->>'outcome' AS outcome, {number("bid")} AS bid, {number("ask")} AS ask,
                   {number("typical")} AS typical_spread, {number("volume")} AS volume,
                   {number("median")} AS usual_volume, market_id,
                   labels->>'outcome_id' AS outcome_id
            FROM alerts WHERE {WHERE} AND alertname IN ('LiquidityGap', 'VolumeSpike')
            ORDER BY time DESC LIMIT 200""",
        "No liquidity gap or volume spike in this range",
    )
    cents = [prop("unit", "percentunit"), prop("decimals", 1)]
    for name in ("bid", "ask", "typical_spread"):
        books = books.override_by_name(name, cents)
    for name in ("volume", "usual_volume"):
        books = books.override_by_name(name, [prop("unit", "currencyUSD")])
    return (
        dashboard(
            "movers-signals", "Signals",
            "Whale trades, watched wallets, new markets, resolutions, liquidity gaps and volume "
            "spikes, as notified.",
            time_from="now-24h",
        )
        .with_variable(venue())
        .with_panel(grid.place(over_time, 12, 8)).with_panel(grid.place(held, 12, 8))
        .with_panel(grid.place(trades, 24, 10))
        .with_panel(grid.place(listed, 12, 10)).with_panel(grid.place(ended, 12, 10))
        .with_panel(grid.place(books, 24, 10))
    )  # fmt: skip
