"""The history requests of both venues (#20's sources) as the venues document them: windows,
batch bodies, the historical split; answers decoded into the structs the parsers take."""

from __future__ import annotations

import httpx
import orjson

from exporter.config import validate_settings
from exporter.normalize.kalshi import parse_candle, settled_cutoff
from exporter.normalize.polymarket import parse_history_point
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.polymarket.client import HISTORY_WINDOW, PolymarketClient, history_windows
from tests.support.venues import FIXTURES, recorded_lines

TOKEN = "123456"


def test_a_long_range_is_cut_into_windows_the_venue_accepts() -> None:
    day = 86_400
    windows = history_windows(0, 40 * day)
    assert windows == [(0, 15 * day), (15 * day, 30 * day), (30 * day, 40 * day)]
    assert all(end - start <= HISTORY_WINDOW for start, end in windows)
    assert history_windows(5, 5) == []


async def test_polymarket_history_requests_and_answers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/prices-history":
            body = {"history": [{"t": 1790000000, "p": 0.5}]}
        else:
            body = {"history": {TOKEN: [{"t": 1790000060, "p": 0.25}]}}
        return httpx.Response(200, content=orjson.dumps(body))

    settings = validate_settings({})
    client = PolymarketClient(settings.venues.polymarket, transport=httpx.MockTransport(handler))
    try:
        points, _ = await client.prices_history(TOKEN, 1789990000, 1790000000, 1)
        batch, _ = await client.batch_prices_history([TOKEN], 1789990000, 1790000100, 60)
    finally:
        await client.aclose()
    assert dict(seen[0].url.params) == {"market": TOKEN, "startTs": "1789990000",
                                        "endTs": "1790000000", "fidelity": "1"}  # fmt: skip
    assert seen[1].method == "POST"
    assert orjson.loads(seen[1].content) == {"markets": [TOKEN], "start_ts": 1789990000,
                                             "end_ts": 1790000100, "fidelity": 60}  # fmt: skip
    assert [parse_history_point(p, TOKEN).price for p in points] == [0.5]
    assert [parse_history_point(p, TOKEN).price for p in batch[TOKEN]] == [0.25]
    assert client.http.stats[("clob_prices_history", "2xx")] == 2


async def test_kalshi_candles_batch_single_historical_and_the_cutoff() -> None:
    seen: list[httpx.Request] = []
    candle = recorded_lines("kalshi/candlestick_items_2026-09.jsonl")[0]
    cutoff = (FIXTURES / "kalshi" / "historical_cutoff_2026-09-26.json").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.endswith("/historical/cutoff"):
            return httpx.Response(200, content=cutoff)
        if path.endswith("/markets/candlesticks"):
            body: object = {"markets": [{"market_ticker": "T1", "candlesticks": [candle]}]}
        else:
            body = {"ticker": "T1", "candlesticks": [candle]}
        return httpx.Response(200, content=orjson.dumps(body))

    settings = validate_settings(
        {"venues": {"kalshi": {"rest_url": "http://kalshi.test/trade-api/v2"}}}
    )
    client = KalshiClient(settings.venues.kalshi, transport=httpx.MockTransport(handler))
    try:
        batch, _ = await client.candlesticks_batch(["T1", "T2"], 100, 200, 1)
        single, _ = await client.candlesticks("S", "T1", 100, 200, 60, historical=False)
        old, _ = await client.candlesticks("S", "T1", 100, 200, 1440, historical=True)
        settled, _ = await client.historical_cutoff()
    finally:
        await client.aclose()
    assert seen[0].url.params["market_tickers"] == "T1,T2"
    assert seen[0].url.params["period_interval"] == "1"
    assert seen[1].url.path == "/trade-api/v2/series/S/markets/T1/candlesticks"
    assert seen[2].url.path == "/trade-api/v2/historical/markets/T1/candlesticks"
    assert batch.markets is not None
    assert batch.markets[0].candlesticks is not None
    rows = [parse_candle(raw, "T1") for raw in batch.markets[0].candlesticks]
    assert rows[0] is not None
    assert rows[0].last_trade == 0.07
    assert single.candlesticks is not None
    assert old.candlesticks is not None
    when = settled_cutoff(settled)
    assert when is not None
    assert when.isoformat() == "2026-07-28T00:00:00+00:00"
    assert client.http.stats[("candlesticks", "2xx")] == 2
