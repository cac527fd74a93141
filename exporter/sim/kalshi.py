"""Simulated Kalshi Trade API v2 over REST, in the formats of API_NOTES §2.

The current (post 2026-03-12) schema: prices as ``*_dollars`` strings with four decimals, counts
as ``*_fp`` strings with two; no integer cent fields, no market ``category``. Listing statuses are
filtered by the filter names (``open``, ``closed`` …) while markets carry the response names
(``active``, ``finalized`` …). Books are bids only per side, ascending (best last).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from exporter.sim.wire import (
    Host,
    Reject,
    bool_param,
    decode_cursor,
    dollars,
    encode_cursor,
    fp,
    int_param,
    iso,
    iso_seconds,
    list_param,
    route,
)
from exporter.sim.world import MILLI, KalshiEvent, KalshiMarket, KalshiSeries, SimTrade, World

PREFIX = "/trade-api/v2"
MARKETS_LIMIT = 1000
EVENTS_LIMIT = 200
TRADES_LIMIT = 1000
# Filter value -> the response status names it selects (API_NOTES 2.2).
STATUS_FILTER = {
    "unopened": {"initialized"},
    "open": {"active"},
    "paused": {"inactive"},
    "closed": {"closed", "determined", "disputed", "amended"},
    "settled": {"finalized"},
}
PERIODS = {1, 60, 1440}
CANDLE_TICKERS = 100
CANDLES_PER_CALL = 10_000
ARCHIVE_AFTER = timedelta(days=1)
"""The historical cutoff lies this long before the simulator's start."""


def _bad(message: str) -> Reject:
    return Reject(400, {"code": "invalid_parameters", "message": message, "details": ""})


def _missing(what: str) -> Reject:
    return Reject(404, {"code": "not_found", "message": f"{what} not found", "details": ""})


def kalshi_market(market: KalshiMarket, world: World, now: float) -> dict[str, Any]:
    if market.trading:
        yes_bid, yes_ask = market.bid_m, market.ask_m
        bid_size, ask_size = market.level_size(yes_bid), market.level_size(yes_ask)
    else:  # an empty book: bid 0, ask 1, sizes 0 (check sizes before using a quote)
        yes_bid, yes_ask, bid_size, ask_size = 0, MILLI, 0.0, 0.0
    day_ago = market.quote_at(now - 86400)
    data = dict(_static(market))
    data.update(
        status=market.kalshi_status,
        yes_bid_dollars=dollars(yes_bid),
        yes_ask_dollars=dollars(yes_ask),
        no_bid_dollars=dollars(MILLI - yes_ask),
        no_ask_dollars=dollars(MILLI - yes_bid),
        yes_bid_size_fp=fp(bid_size),
        yes_ask_size_fp=fp(ask_size),
        last_price_dollars=dollars(market.last_m or 0),
        previous_yes_bid_dollars=dollars(day_ago[0]),
        previous_yes_ask_dollars=dollars(day_ago[1]),
        previous_price_dollars=dollars(day_ago[2] or 0),
        volume_fp=fp(market.volume),
        volume_24h_fp=fp(market.volume_24h),
        open_interest_fp=fp(market.open_interest),
        result="" if market.result is None else ("yes" if market.result == MILLI else "no"),
    )
    return data


def _static(market: KalshiMarket) -> dict[str, Any]:
    """The fields that never change, in the venue's key order (rendered once per market)."""
    if market.static:
        return market.static
    event = market.event
    data: dict[str, Any] = {
        "ticker": market.ticker,
        "event_ticker": event.ticker,
        "market_type": "binary",
        "title": market.title,
        "subtitle": "",
        "yes_sub_title": market.yes_sub_title,
        "no_sub_title": market.yes_sub_title,
        "created_time": iso(market.created),
        "open_time": iso(market.created),
        "close_time": iso_seconds(market.end),
        "expected_expiration_time": iso_seconds(market.end + timedelta(hours=1)),
        "expiration_time": iso_seconds(market.end + timedelta(days=7)),
        "latest_expiration_time": iso_seconds(market.end + timedelta(days=7)),
        "settlement_timer_seconds": 600,
        "status": "",
        "yes_bid_dollars": "",
        "yes_ask_dollars": "",
        "no_bid_dollars": "",
        "no_ask_dollars": "",
        "yes_bid_size_fp": "",
        "yes_ask_size_fp": "",
        "last_price_dollars": "",
        "previous_yes_bid_dollars": "",
        "previous_yes_ask_dollars": "",
        "previous_price_dollars": "",
        "volume_fp": "",
        "volume_24h_fp": "",
        "open_interest_fp": "",
        "notional_value_dollars": "1.0000",
        "liquidity_dollars": "0.0000",
        "result": "",
        "can_close_early": True,
        "expiration_value": "",
        "rules_primary": f"Simulated: resolves Yes if {market.yes_sub_title.lower()} happens.",
        "rules_secondary": "",
        "price_level_structure": market.structure,
        "price_ranges": [{"end": "1.0000", "start": "0.0000", "step": dollars(market.base_tick_m)}],
        "strike_type": "custom",
    }
    if event.multivariate:
        data["mve_collection_ticker"] = event.ticker.split("-")[0]
        data["mve_selected_legs"] = []
        data["custom_strike"] = {
            "Associated Events": "",
            "Associated Market Sides": "",
            "Associated Markets": "",
            "Multivariate Event Ticker": event.ticker,
        }
    market.static.update(data)
    return data


def kalshi_event(event: KalshiEvent, world: World, now: float, *, nested: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "available_on_brokers": False,
        "category": event.series.category,
        "collateral_return_type": "MECNET" if event.mutually_exclusive else "",
        "event_ticker": event.ticker,
        "mutually_exclusive": event.mutually_exclusive,
        "series_ticker": event.series.ticker,
        "strike_period": "",
        "sub_title": event.sub_title,
        "title": event.title,
    }
    if nested:
        data["markets"] = [kalshi_market(m, world, now) for m in event.markets]
    return data


def kalshi_series(series: KalshiSeries) -> dict[str, Any]:
    return {
        "additional_prohibitions": None,
        "category": series.category,
        "contract_terms_url": f"https://kalshi-public-docs.s3.amazonaws.com/contract_terms/{series.ticker}.pdf",
        "contract_url": f"https://kalshi-public-docs.s3.amazonaws.com/regulatory/{series.ticker}.pdf",
        "fee_multiplier": 1,
        "fee_type": "quadratic",
        "frequency": series.frequency,
        "settlement_sources": [{"name": "Simulator", "url": "https://example.invalid/"}],
        "tags": series.tags,
        "ticker": series.ticker,
        "title": series.title,
    }


def kalshi_trade(trade: SimTrade, world: World) -> dict[str, Any]:
    side = "yes" if trade.buy else "no"
    return {
        "trade_id": trade.trade_id,
        "ticker": trade.market.key,
        "count_fp": fp(trade.size),
        "yes_price_dollars": dollars(trade.price_m),
        "no_price_dollars": dollars(MILLI - trade.price_m),
        "taker_outcome_side": side,
        "taker_book_side": "bid" if trade.buy else "ask",
        "taker_side": side,
        "is_block_trade": False,
        "created_time": iso(world.time_of(trade.seconds)),
    }


def kalshi_orderbook(market: KalshiMarket, depth: int = 0) -> dict[str, Any]:
    """Bids only per side, ascending (best last); a NO bid at 1 - p is a YES ask at p."""
    bids, asks = market.yes_book()
    yes = [[dollars(p), fp(s)] for p, s in reversed(bids)]
    no = [[dollars(MILLI - p), fp(s)] for p, s in reversed(asks)]
    if depth:
        yes, no = yes[-depth:], no[-depth:]
    book: dict[str, Any] = {}
    if yes:
        book["yes_dollars"] = yes
    if no:
        book["no_dollars"] = no
    return {"orderbook_fp": book}


class KalshiRest:
    def __init__(self, host: Host) -> None:
        self.host = host

    def add_routes(self, app: web.Application) -> None:
        h, v, p = self.host, "kalshi", PREFIX
        add = app.router.add_get
        add(f"{p}/markets", route(h, v, "kalshi /markets", self.markets))
        add(f"{p}/markets/trades", route(h, v, "kalshi /markets/trades", self.trades))
        add(f"{p}/markets/{{ticker}}", route(h, v, "kalshi /markets/{ticker}", self.market))
        add(
            f"{p}/markets/{{ticker}}/orderbook",
            route(h, v, "kalshi /markets/{ticker}/orderbook", self.orderbook),
        )
        add(f"{p}/events", route(h, v, "kalshi /events", self.events))
        add(f"{p}/events/{{ticker}}", route(h, v, "kalshi /events/{ticker}", self.event))
        add(f"{p}/series", route(h, v, "kalshi /series", self.series_list))
        add(f"{p}/series/{{ticker}}", route(h, v, "kalshi /series/{ticker}", self.series))
        add(
            f"{p}/series/{{series}}/markets/{{ticker}}/candlesticks",
            route(h, v, "kalshi /series/{series}/markets/{ticker}/candlesticks", self.candles),
        )
        add(
            f"{p}/markets/candlesticks",
            route(h, v, "kalshi /markets/candlesticks", self.candles_batch),
        )
        add(
            f"{p}/historical/cutoff",
            route(h, v, "kalshi /historical/cutoff", self.historical_cutoff),
        )
        add(
            f"{p}/historical/markets/{{ticker}}/candlesticks",
            route(
                h, v, "kalshi /historical/markets/{ticker}/candlesticks", self.historical_candles
            ),
        )
        add(f"{p}/exchange/status", route(h, v, "kalshi /exchange/status", self.status))

    def _market(self, ticker: str) -> KalshiMarket:
        found = self.host.world.by_key.get(ticker)
        if not isinstance(found, KalshiMarket):
            raise _missing("market")
        return found

    async def markets(self, request: web.Request, now: float) -> object:
        world = self.host.world
        limit = int_param(request, "limit", 100, _bad)
        if not 1 <= limit <= MARKETS_LIMIT:
            raise _bad(f"limit must be between 1 and {MARKETS_LIMIT}")
        status = request.query.get("status")
        if status is not None and status not in STATUS_FILTER:
            raise _bad(f"invalid status: {status}")
        mve = request.query.get("mve_filter")
        if mve not in (None, "only", "exclude"):
            raise _bad(f"invalid mve_filter: {mve}")
        tickers = set(list_param(request, "tickers"))
        event_ticker = request.query.get("event_ticker")
        series_ticker = request.query.get("series_ticker")
        wanted = STATUS_FILTER.get(status or "")
        # Close-time bounds (unix seconds, both inclusive): what a collector sweeping one slice
        # of the listing asks.
        after = int_param(request, "min_close_ts", 0, _bad)
        before = int_param(request, "max_close_ts", 0, _bad)
        picked = [
            m
            for m in world.kalshi_markets
            if (wanted is None or m.kalshi_status in wanted)
            and (not after or int(m.end.timestamp()) >= after)
            and (not before or int(m.end.timestamp()) <= before)
            and (mve is None or m.event.multivariate == (mve == "only"))
            and (not tickers or m.ticker in tickers)
            and (event_ticker is None or m.event.ticker == event_ticker)
            and (series_ticker is None or m.event.series.ticker == series_ticker)
        ]
        cursor = request.query.get("cursor")
        start = decode_cursor(cursor, _bad) if cursor else 0
        chosen = picked[start : start + limit]
        rows = [kalshi_market(m, world, now) for m in chosen]
        self._served("kalshi /markets", chosen, now)
        if rows and self.host.faults.malformed(
            "kalshi", "kalshi /markets", start // limit + 1, now
        ):
            rows[0]["yes_bid_dollars"] = "n/a"
            del rows[0]["yes_ask_dollars"]
            self.host.truth.malformed.append(("kalshi /markets", rows[0]["ticker"]))
        more = start + limit < len(picked)
        return {"markets": rows, "cursor": encode_cursor(start + limit) if more else ""}

    def _served(self, name: str, markets: list[KalshiMarket], now: float) -> None:
        truth = self.host.truth
        truth.record_listing(name, [m.ticker for m in markets])
        for m in markets:
            bids, asks = m.yes_book()
            truth.quote(
                m.ticker,
                name,
                now,
                bids[0][0] / MILLI if bids else None,
                asks[0][0] / MILLI if asks else None,
                None if m.last_m is None else m.last_m / MILLI,
            )

    async def market(self, request: web.Request, now: float) -> object:
        market = self._market(request.match_info["ticker"])
        self._served("kalshi /markets/{ticker}", [market], now)
        return {"market": kalshi_market(market, self.host.world, now)}

    async def orderbook(self, request: web.Request, now: float) -> object:
        market = self._market(request.match_info["ticker"])
        depth = int_param(request, "depth", 0, _bad)
        if not 0 <= depth <= 100:
            raise _bad("depth must be between 0 and 100")
        self._served("kalshi /markets/{ticker}/orderbook", [market], now)
        return kalshi_orderbook(market, depth)

    async def events(self, request: web.Request, now: float) -> object:
        world = self.host.world
        limit = int_param(request, "limit", EVENTS_LIMIT, _bad)
        if not 1 <= limit <= EVENTS_LIMIT:
            raise _bad(f"limit must be between 1 and {EVENTS_LIMIT}")
        nested = bool_param(request, "with_nested_markets") or False
        status = request.query.get("status")
        if (status is not None and status not in STATUS_FILTER) or status == "paused":
            raise _bad(f"invalid status: {status}")
        wanted = STATUS_FILTER.get(status or "")
        series_ticker = request.query.get("series_ticker")
        picked = [
            e
            for e in world.kalshi_events
            if not e.multivariate  # multivariate events live under /events/multivariate
            and (series_ticker is None or e.series.ticker == series_ticker)
            and (wanted is None or any(m.kalshi_status in wanted for m in e.markets))
        ]
        cursor = request.query.get("cursor")
        start = decode_cursor(cursor, _bad) if cursor else 0
        chosen = picked[start : start + limit]
        if nested:
            self._served("kalshi /events", [m for e in chosen for m in e.markets], now)
        more = start + limit < len(picked)
        return {
            "events": [kalshi_event(e, world, now, nested=nested) for e in chosen],
            "milestones": [],
            "cursor": encode_cursor(start + limit) if more else "",
        }

    async def event(self, request: web.Request, now: float) -> object:
        world = self.host.world
        ticker = request.match_info["ticker"]
        event = next((e for e in world.kalshi_events if e.ticker == ticker), None)
        if event is None:
            raise _missing("event")
        return {
            "event": kalshi_event(event, world, now, nested=False),
            "markets": [kalshi_market(m, world, now) for m in event.markets],
        }

    async def series_list(self, request: web.Request, now: float) -> object:
        category = request.query.get("category")
        return {
            "series": [
                kalshi_series(s)
                for s in self.host.world.kalshi_series
                if category is None or s.category == category
            ]
        }

    async def series(self, request: web.Request, now: float) -> object:
        ticker = request.match_info["ticker"]
        found = next((s for s in self.host.world.kalshi_series if s.ticker == ticker), None)
        if found is None:
            raise _missing("series")
        return {"series": kalshi_series(found)}

    async def trades(self, request: web.Request, now: float) -> object:
        world = self.host.world
        limit = int_param(request, "limit", 100, _bad)
        if not 1 <= limit <= TRADES_LIMIT:
            raise _bad(f"limit must be between 1 and {TRADES_LIMIT}")
        ticker = request.query.get("ticker")
        min_ts = int_param(request, "min_ts", 0, _bad)
        max_ts = int_param(request, "max_ts", 0, _bad)
        origin = world.start.timestamp()
        if ticker:
            pool = list(reversed(self._market(ticker).trades))
        else:
            pool = [t for t in reversed(world.trades) if t.market.venue == "kalshi"]
        if min_ts:
            pool = [t for t in pool if origin + t.seconds >= min_ts]
        if max_ts:
            pool = [t for t in pool if origin + t.seconds <= max_ts]
        cursor = request.query.get("cursor")
        start = decode_cursor(cursor, _bad) if cursor else 0
        rows = [kalshi_trade(t, world) for t in pool[start : start + limit]]
        page = start // limit + 1
        if rows and self.host.faults.malformed("kalshi", "kalshi /markets/trades", page, now):
            rows[0]["yes_price_dollars"] = "n/a"
            self.host.truth.malformed.append(("kalshi /markets/trades", rows[0]["trade_id"]))
        more = start + limit < len(pool)
        return {"trades": rows, "cursor": encode_cursor(start + limit) if more else ""}

    async def candles(self, request: web.Request, now: float) -> object:
        market = self._market(request.match_info["ticker"])
        if market.event.series.ticker != request.match_info["series"] or self._archived(market):
            raise _missing("market")
        start_ts, end_ts, period = _candle_range(request)
        candles = market_candles(self.host.world, market, start_ts, end_ts, period, now)
        if len(candles) > CANDLES_PER_CALL:
            raise _bad("too many candlesticks requested")
        return {"ticker": market.ticker, "candlesticks": candles}

    async def candles_batch(self, request: web.Request, now: float) -> object:
        """``GET /markets/candlesticks``: up to :data:`CANDLE_TICKERS` markets, at most
        :data:`CANDLES_PER_CALL` candles in all; a ticker it does not serve is left out."""
        tickers = [t for t in request.query.get("market_tickers", "").split(",") if t]
        if not tickers:
            raise _bad("market_tickers is required")
        if len(tickers) > CANDLE_TICKERS:
            raise _bad(f"at most {CANDLE_TICKERS} market_tickers")
        start_ts, end_ts, period = _candle_range(request)
        world = self.host.world
        found = [world.by_key.get(t) for t in tickers]
        served = [m for m in found if isinstance(m, KalshiMarket) and not self._archived(m)]
        # The cap counts the candles the range can hold, whether or not each market has them.
        last = min(end_ts, int(world.time_of(now).timestamp()))
        per_market = max(0, last - start_ts) // (period * 60) + 1
        if per_market * len(served) > CANDLES_PER_CALL:
            raise _bad("too many candlesticks requested")
        return {
            "markets": [
                {
                    "market_ticker": m.ticker,
                    "candlesticks": market_candles(world, m, start_ts, end_ts, period, now),
                }
                for m in served
            ]
        }

    async def historical_cutoff(self, request: web.Request, now: float) -> object:
        cutoff = iso(self._cutoff())
        return {
            "market_positions_last_updated_ts": cutoff,
            "market_settled_ts": cutoff,
            "orders_updated_ts": cutoff,
            "trades_created_ts": cutoff,
        }

    async def historical_candles(self, request: web.Request, now: float) -> object:
        """``/historical/markets/{ticker}/candlesticks``: markets settled before the cutoff,
        with the archive's unsuffixed keys."""
        market = self._market(request.match_info["ticker"])
        if not self._archived(market):
            raise _missing("market")
        start_ts, end_ts, period = _candle_range(request)
        candles = market_candles(self.host.world, market, start_ts, end_ts, period, now)
        if len(candles) > CANDLES_PER_CALL:
            raise _bad("too many candlesticks requested")
        return {"ticker": market.ticker, "candlesticks": [_unsuffixed(c) for c in candles]}

    def _cutoff(self) -> datetime:
        return self.host.world.start - ARCHIVE_AFTER

    def _archived(self, market: KalshiMarket) -> bool:
        """Settled before the simulator started: behind ``/historical`` (the cutoff is
        :data:`ARCHIVE_AFTER` before the start)."""
        return market.kalshi_status == "finalized" and market.born(self.host.world.start) < 0

    async def status(self, request: web.Request, now: float) -> object:
        return {"exchange_active": True, "trading_active": True}


def _candle_range(request: web.Request) -> tuple[int, int, int]:
    period = int_param(request, "period_interval", 0, _bad)
    if period not in PERIODS:
        raise _bad("period_interval must be 1, 60 or 1440")
    start_ts = int_param(request, "start_ts", -1, _bad)
    end_ts = int_param(request, "end_ts", -1, _bad)
    if start_ts < 0 or end_ts < 0 or end_ts < start_ts:
        raise _bad("start_ts and end_ts are required, start_ts <= end_ts")
    return start_ts, end_ts, period


def market_candles(
    world: World, market: KalshiMarket, start_ts: int, end_ts: int, period: int, now: float
) -> list[dict[str, Any]]:
    """A market's candles of ``period`` minutes whose end lies in ``start_ts``..``end_ts``, from
    its creation on, none after now; the world's past before the simulator started."""
    origin = world.start.timestamp()
    width = period * 60
    born = math.ceil(market.created.timestamp())
    first_end = -(-max(start_ts, born + 1) // width) * width
    last_end = min(end_ts, int(world.time_of(now).timestamp()))
    return [
        _candle(world, market, end - width - origin, end - origin, end)
        for end in range(first_end, last_end + 1, width)
    ]


def _candle(
    world: World, market: KalshiMarket, lo: float, hi: float, end_ts: int
) -> dict[str, Any]:
    """One candle over ``(lo, hi]`` simulated seconds: quote OHLC from the quote history, price
    OHLC from trades (absent when nothing traded, API_NOTES 2.6). Before the start, the past
    has one quote a minute, sampled at the candle's ends, and whether it traded is drawn per
    candle."""
    origin = world.start
    opening = market.quote_then(max(lo, market.born(origin)), origin) or market.opening
    quotes = [opening[:2]]
    price: dict[str, str] = {"previous_dollars": dollars(opening[2] or 0)}
    volume = 0.0
    if lo < 0:
        closing = market.quote_then(min(hi, -1e-9), origin) or opening
        quotes.append(closing[:2])
        traded = market.past(origin).traded(end_ts, market.salt) if hi <= 0 else 0.0
        if traded and closing[2] is not None:
            last = dollars(closing[2])
            price.update(open_dollars=last, high_dollars=last, low_dollars=last,
                         close_dollars=last, mean_dollars=last)  # fmt: skip
            volume = traded
    if hi > 0:
        quotes += [(b, a) for t, b, a, _ in market.history if lo < t <= hi]
        trades = [t for t in market.trades if lo < t.seconds <= hi]
        if trades:
            values = [t.price_m for t in trades]
            price.update(
                open_dollars=dollars(values[0]),
                high_dollars=dollars(max(values)),
                low_dollars=dollars(min(values)),
                close_dollars=dollars(values[-1]),
                mean_dollars=dollars(round(sum(values) / len(values))),
            )
            volume = sum(t.size for t in trades)
    bids = [q[0] for q in quotes]
    asks = [q[1] for q in quotes]
    return {
        "end_period_ts": end_ts,
        "open_interest_fp": fp(market.open_interest),
        "price": price,
        "volume_fp": fp(volume),
        "yes_ask": {
            "close_dollars": dollars(asks[-1]),
            "high_dollars": dollars(max(asks)),
            "low_dollars": dollars(min(asks)),
            "open_dollars": dollars(asks[0]),
        },
        "yes_bid": {
            "close_dollars": dollars(bids[-1]),
            "high_dollars": dollars(max(bids)),
            "low_dollars": dollars(min(bids)),
            "open_dollars": dollars(bids[0]),
        },
    }


def _unsuffixed(candle: dict[str, Any]) -> dict[str, Any]:
    """The archive's form of a candle: ``open`` for ``open_dollars``, ``volume`` for
    ``volume_fp`` (API_NOTES 2.6)."""

    def strip(key: str) -> str:
        return key.removesuffix("_dollars").removesuffix("_fp")

    return {
        strip(k): {strip(i): x for i, x in v.items()} if isinstance(v, dict) else v
        for k, v in candle.items()
    }
