"""Market Detail: one market's candles from the OHLC aggregates, bid/ask, volume, trades and
alerts."""

from __future__ import annotations

from grafana_foundation_sdk.builders import candlestick, table, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import candlestick as candles
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from boards.common import (
    GRAFANA,
    HIDDEN,
    SQL,
    AnnotationSql,
    Layout,
    dashboard,
    described,
    legend,
    link,
    prop,
    query_variable,
    sql,
    tooltip,
)

# The OHLC level follows the time range: 1m buckets up to 2 days, 1h up to 60 days, then 1d.
_RANGE = "($__timeTo()::timestamptz - $__timeFrom()::timestamptz)"
_LEVELS = (
    ("ohlc_1m", f"{_RANGE} <= interval '2 days'"),
    ("ohlc_1h", f"{_RANGE} > interval '2 days' AND {_RANGE} <= interval '60 days'"),
    ("ohlc_1d", f"{_RANGE} > interval '60 days'"),
)


def ohlc(columns: str) -> str:
    """``columns`` of the outcome's buckets, from the aggregate the time range calls for."""
    return (
        " UNION ALL ".join(
            f"SELECT bucket AS time, {columns} FROM {name}"
            f" WHERE outcome_id = '$outcome' AND $__timeFilter(bucket) AND {when}"
            for name, when in _LEVELS
        )
        + " ORDER BY 1"
    )


def lines() -> timeseries.Panel:
    return (
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.LINE).show_points(common.VisibilityMode.NEVER)
        .span_nulls(True)
    )  # fmt: skip


def build() -> board.Dashboard:
    grid = Layout()
    # Open markets first, by 24 h volume; typing in the picker searches every market, resolved
    # and long-tail ones included ($__searchFilter is what is typed, followed by %).
    market = query_variable(
        "market", "Market",
        """SELECT title || ' · ' || venue
                  || CASE WHEN status = 'open' THEN '' ELSE ' · ' || status END AS __text,
                  market_id AS __value
           FROM markets
           WHERE title ILIKE '%' || '$__searchFilter' OR market_id LIKE '$__searchFilter'
           ORDER BY status = 'open' DESC, volume_24h DESC NULLS LAST, market_id LIMIT 1000""",
        multi=False, include_all=False, sort=model.VariableSort.DISABLED,
    )  # fmt: skip
    outcome = query_variable(
        "outcome", "Outcome",
        "SELECT name AS __text, outcome_id AS __value FROM outcomes"
        " WHERE market_id = '$market' ORDER BY position",
        multi=False, include_all=False, sort=model.VariableSort.DISABLED,
    )  # fmt: skip
    about = described(
        table.Panel().align(common.FieldTextAlignment.AUTO),
        "Market",
        "The market's title, venue, category, status, scheduled end and volume; the title "
        "links to the venue.",
        [sql("""
            SELECT title, venue, category, status, end_time, volume_24h, liquidity, url
            FROM markets WHERE market_id = '$market'""")],
        source=SQL, no_value="Pick a market above",
    )  # fmt: skip
    about = (
        about.override_by_name(
            "title", [prop("links", [link("Open on the venue", "${__data.fields.url}")])]
        )
        .override_by_name("url", [HIDDEN])
        .override_by_name("end_time", [prop("unit", "dateTimeAsIso")])
        .override_by_name("volume_24h", [prop("unit", "short")])
    )
    price = described(
        candlestick.Panel().mode(candles.VizDisplayMode.CANDLES)
        .candle_style(candles.CandleStyle.CANDLES)
        .color_strategy(candles.ColorStrategy.OPEN_CLOSE)
        .colors(candlestick.CandlestickColors().up("green").down("red"))
        .include_all_fields(False).legend(legend()).tooltip(tooltip())
        .fields(candlestick.CandlestickFieldMap()),
        "Price",
        "Open, high, low and close of the displayed price; buckets of 1 minute up to a "
        "2-day range, 1 hour up to 60 days, then 1 day.",
        [sql(ohlc("open, high, low, close"), fmt="time_series")],
        source=SQL, unit="percentunit", decimals=1, no_value="No prices in this range yet",
    )  # fmt: skip
    blue = prop("color", {"mode": "fixed", "fixedColor": "blue"})
    spread = (
        described(
            lines().line_width(1).fill_opacity(0),
            "Bid / ask",
            "Best bid and ask at the end of each bucket (the band between them is the "
            "spread), with the closing price.",
            [sql(ohlc("bid, ask, close AS price"), fmt="time_series")],
            source=SQL, unit="percentunit", decimals=1,
        )
        .override_by_name(
            "bid", [prop("custom.fillBelowTo", "ask"), prop("custom.fillOpacity", 20), blue]
        )
        .override_by_name("ask", [blue])
    )  # fmt: skip
    volume = described(
        lines(),
        "Volume 24 h",
        "The market's traded volume over the preceding 24 hours (USD on Polymarket, "
        "contracts on Kalshi).",
        [sql(ohlc("volume_24h"), fmt="time_series")],
        source=SQL, unit="short",
    )  # fmt: skip
    trades = (
        described(
            table.Panel().align(common.FieldTextAlignment.AUTO),
            "Recent trades",
            "The outcome's latest trades in the range: taker side, price, size and trader "
            "where the venue publishes one.",
            [sql("""
                SELECT time, side, price, size, price * size AS notional, trader FROM trades
                WHERE outcome_id = '$outcome' AND $__timeFilter(time)
                ORDER BY time DESC LIMIT 200""")],
            source=SQL, no_value="No trades in this range",
        )
        .override_by_name("price", [prop("unit", "percentunit"), prop("decimals", 1)])
        .override_by_name("notional", [prop("unit", "currencyUSD")])
    )  # fmt: skip
    builtin = (
        board.AnnotationQuery().name("Annotations & Alerts").built_in(1).type("dashboard")
        .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)").datasource(GRAFANA)
    )  # fmt: skip
    alerts = (
        board.AnnotationQuery().name("Alerts").enable(True).icon_color("red").datasource(SQL)
        .target(AnnotationSql("""
            SELECT starts_at AS time, coalesce(ends_at, now()) AS timeend,
                   alertname || ': ' || coalesce(summary, '') AS text, alertname AS tags
            FROM alerts WHERE market_id = '$market' AND status = 'firing'
              AND $__timeFilter(starts_at) ORDER BY 1"""))
    )  # fmt: skip
    return (
        dashboard(
            "movers-market", "Market Detail",
            "One market: OHLC candles from the aggregates, bid/ask, volume, trades and its "
            "alerts.",
            time_from="now-24h",
        )
        .with_variable(market).with_variable(outcome).annotation(builtin).annotation(alerts)
        .with_panel(grid.place(about, 24, 4)).with_panel(grid.place(price, 24, 10))
        .with_panel(grid.place(spread, 12, 8)).with_panel(grid.place(volume, 12, 8))
        .with_panel(grid.place(trades, 24, 9))
    )  # fmt: skip
