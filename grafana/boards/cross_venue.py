"""Cross-venue: the pairs of pairs.file (the same question on Polymarket and Kalshi) by how far
apart they are priced, one pair's spread over time, and both venues' candles on one chart."""

from __future__ import annotations

from grafana_foundation_sdk.builders import candlestick, table, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.models import candlestick as candles
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from boards.common import (
    HIDDEN,
    SQL,
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
from boards.market_detail import _LEVELS

PRICE = [prop("unit", "percentunit"), prop("decimals", 1)]


def latest(outcome: str, inverse: bool) -> str:
    """A pair side's latest price at the range's end, as the pair's question reads it."""
    price = "CASE WHEN p.inverse THEN 1 - s.price ELSE s.price END" if inverse else "s.price"
    return f"""(SELECT {price} FROM snapshots s
                WHERE s.outcome_id = p.{outcome} AND s.time <= $__timeTo()::timestamptz
                ORDER BY s.time DESC LIMIT 1)"""


def both_candles() -> str:
    """The pair's Polymarket candles, and Kalshi's (turned over for an inverse pair) in the
    same buckets, from the aggregate the time range calls for."""
    kalshi = """CASE WHEN p.inverse THEN 1 - k.{a} ELSE k.{b} END"""
    parts = []
    for name, when in _LEVELS:
        parts.append(f"""
            SELECT a.bucket AS time, a.open, a.high, a.low, a.close,
                   {kalshi.format(a="low", b="high")} AS kalshi_high,
                   {kalshi.format(a="high", b="low")} AS kalshi_low,
                   {kalshi.format(a="close", b="close")} AS kalshi_close
            FROM pairs p
            JOIN {name} a ON a.outcome_id = p.polymarket_outcome_id
            LEFT JOIN {name} k ON k.outcome_id = p.kalshi_outcome_id AND k.bucket = a.bucket
            WHERE p.pair_id = '$pair' AND $__timeFilter(a.bucket) AND {when}""")
    return " UNION ALL ".join(parts) + " ORDER BY 1"


def build() -> board.Dashboard:
    grid = Layout()
    pair = query_variable(
        "pair", "Pair", "SELECT label AS __text, pair_id AS __value FROM pairs ORDER BY position",
        multi=False, include_all=False, sort=model.VariableSort.DISABLED,
    )  # fmt: skip
    pairs = described(
        table.Panel().align(common.FieldTextAlignment.AUTO),
        "Pairs by spread",
        "Each pair of pairs.file: both venues' latest prices at the range's end as the pair's "
        "question reads them (1 - YES on Kalshi for an inverse pair) and the spread, "
        "Polymarket less Kalshi, widest first. The label shows the pair below; the prices "
        "open the venues.",
        [sql(f"""
            SELECT label, polymarket, kalshi, 100 * (polymarket - kalshi) AS spread_pp,
                   polymarket_url, kalshi_url, pair_id
            FROM (
                SELECT p.label, p.pair_id, p.position,
                       {latest("polymarket_outcome_id", False)} AS polymarket,
                       {latest("kalshi_outcome_id", True)} AS kalshi,
                       mp.url AS polymarket_url, mk.url AS kalshi_url
                FROM pairs p
                JOIN markets mp ON mp.market_id = p.polymarket_market_id
                JOIN markets mk ON mk.market_id = p.kalshi_market_id
            ) x
            ORDER BY abs(polymarket - kalshi) DESC NULLS LAST, position""")],
        source=SQL, no_value="No pairs: list them in pairs.file (README, Cross-venue pairs)",
    )  # fmt: skip
    shown = "/d/movers-pairs?var-pair=${__data.fields.pair_id}&${__url_time_range}"
    pairs = (
        pairs.override_by_name("label", [prop("links", [link("Show this pair", shown)])])
        .override_by_name(
            "polymarket", [*PRICE, prop("links", [link("Polymarket",
                                                       "${__data.fields.polymarket_url}")])]
        )
        .override_by_name(
            "kalshi", [*PRICE, prop("links", [link("Kalshi", "${__data.fields.kalshi_url}")])]
        )
        .override_by_name("spread_pp", [prop("unit", "none"), prop("decimals", 1)])
        .override_by_name("polymarket_url", [HIDDEN]).override_by_name("kalshi_url", [HIDDEN])
        .override_by_name("pair_id", [HIDDEN])
    )  # fmt: skip
    spread = described(
        timeseries.Panel().legend(legend()).tooltip(tooltip())
        .draw_style(common.GraphDrawStyle.LINE).show_points(common.VisibilityMode.NEVER)
        .span_nulls(True).fill_opacity(10),
        "Spread",
        "The pair's spread minute by minute (the pair_prices view: each side's last close "
        "carried forward), Polymarket less Kalshi in pp. PairDivergence alerts at 5 pp for "
        "10 minutes (thresholds.yml).",
        [sql("""
            SELECT time, spread_pp AS spread FROM pair_prices
            WHERE pair_id = '$pair' AND $__timeFilter(time) ORDER BY time""",
             fmt="time_series")],
        source=SQL, unit="none", decimals=1, no_value="Pick a pair above",
    )  # fmt: skip
    prices = described(
        candlestick.Panel().mode(candles.VizDisplayMode.CANDLES)
        .candle_style(candles.CandleStyle.CANDLES)
        .color_strategy(candles.ColorStrategy.OPEN_CLOSE)
        .colors(candlestick.CandlestickColors().up("green").down("red"))
        .include_all_fields(True).legend(legend()).tooltip(tooltip())
        .fields(candlestick.CandlestickFieldMap()),
        "Both venues",
        "Polymarket's candles, with Kalshi's high, low and close in the same buckets as lines "
        "(as the pair's question reads them); buckets of 1 minute up to a 2-day range, 1 hour "
        "up to 60 days, then 1 day.",
        [sql(both_candles(), fmt="time_series")],
        source=SQL, unit="percentunit", decimals=1, no_value="Pick a pair above",
    )  # fmt: skip
    blue = prop("color", {"mode": "fixed", "fixedColor": "blue"})
    prices = (
        prices.override_by_name(
            "kalshi_low", [prop("custom.fillBelowTo", "kalshi_high"), blue,
                           prop("custom.fillOpacity", 15), prop("custom.lineWidth", 0)]
        )
        .override_by_name("kalshi_high", [blue, prop("custom.lineWidth", 0)])
        .override_by_name("kalshi_close", [blue])
    )  # fmt: skip
    return (
        dashboard(
            "movers-pairs", "Cross-venue",
            "The same question on Polymarket and Kalshi: the pairs by spread, one pair's spread "
            "over time and both venues' candles.",
            time_from="now-24h",
        )
        .with_variable(pair)
        .with_panel(grid.place(pairs, 24, 9)).with_panel(grid.place(spread, 24, 8))
        .with_panel(grid.place(prices, 24, 10))
    )  # fmt: skip
