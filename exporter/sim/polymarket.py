"""Simulated Polymarket: Gamma, CLOB and Data API over REST, in the formats of API_NOTES §1.

Field shapes follow the recordings in ``shared/venues/polymarket`` (the contract tests hold them
to it): JSON-encoded strings for ``outcomes``/``outcomePrices``/``clobTokenIds``, string
``volume``/``liquidity``, absent optional fields, string prices in the CLOB, books with the best
bid and ask as the *last* elements, unix seconds on the Data API.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from exporter.model import displayed_price
from exporter.sim.wire import (
    Host,
    Reject,
    bool_param,
    decode_cursor,
    encode_cursor,
    int_param,
    iso,
    list_param,
    ms,
    route,
    trim,
    trim_float,
)
from exporter.sim.world import MILLI, PolyEvent, PolyMarket, SimTrade, World, digest

GAMMA_OFFSET_LIMIT = 2000
GAMMA_MARKETS_LIMIT = 100
GAMMA_EVENTS_KEYSET_LIMIT = 500
CLOB_BATCH_LIMIT = 500
DATA_OFFSET_LIMIT = 10_000
HISTORY_WINDOW = timedelta(days=15)
HISTORY_BATCH = 20
INTERVALS = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "1w": 7 * 86400, "1m": 30 * 86400}
MIN_FIDELITY = {"1m": 10, "1w": 5}
IMAGE = "https://polymarket-upload.s3.us-east-2.amazonaws.com/sim.png"
ZERO_ADDRESS = "0x" + "0" * 40


def _bad(message: str) -> Reject:
    return Reject(400, {"error": message})


def _displayed(market: PolyMarket) -> float:
    """Polymarket's displayed price of the first outcome (midpoint unless the spread > 0.10)."""
    bid, ask, last = market.token_quote(0)
    return (
        displayed_price(
            None if bid is None else bid / MILLI,
            None if ask is None else ask / MILLI,
            None if last is None else last / MILLI,
        )
        or 0.0
    )


# --- Gamma --------------------------------------------------------------------------------------


def gamma_market(market: PolyMarket, world: World, now: float, *, nested: bool) -> dict[str, Any]:
    """A Gamma market object; ``nested`` is the form inside an event (fewer keys)."""
    event = market.event
    times = _times(market)
    trading = market.trading
    if market.result is not None:
        prices = ["1", "0"] if market.result == MILLI else ["0", "1"]
    else:
        shown = round(_displayed(market), 4)
        prices = [f"{shown:g}", f"{round(1 - shown, 4):g}"]
    volume, liquidity = market.volume, market.liquidity
    spread = (market.ask_m - market.bid_m) / MILLI
    day_ago = market.quote_at(now - 86400)
    data: dict[str, Any] = {
        "id": market.gamma_id,
        "question": market.title,
        "conditionId": market.condition_id,
        "slug": market.slug,
        "resolutionSource": "",
        "endDate": times["end"],
        "liquidity": repr(liquidity),
        "startDate": times["created"],
        "image": IMAGE,
        "icon": IMAGE,
        "description": f"Simulated market. {market.title}",
        "outcomes": orjson.dumps(list(market.outcomes)).decode(),
        "outcomePrices": orjson.dumps(prices).decode(),
        "volume": repr(volume),
        "active": True,
        "closed": not trading,
        "marketMakerAddress": "",
        "createdAt": times["created"],
        "updatedAt": _iso_at(world.start, now),
        "new": False,
        "featured": False,
        "submitted_by": ZERO_ADDRESS,
        "archived": False,
        "resolvedBy": ZERO_ADDRESS,
        "restricted": True,
        "groupItemTitle": market.group_title,
        "groupItemThreshold": "0",
        "questionID": market.question_id,
        "enableOrderBook": True,
        "orderPriceMinTickSize": market.tick_m / MILLI,
        "orderMinSize": 5,
        "volumeNum": volume,
        "liquidityNum": liquidity,
        "endDateIso": times["end_date"],
        "startDateIso": times["created_date"],
        "hasReviewedDates": True,
        "volume24hr": market.volume_24h,
        "volume1wk": market.volume_24h * 5,
        "volume1mo": market.volume_24h * 20,
        "volume1yr": volume,
        "clobTokenIds": orjson.dumps(list(market.tokens)).decode(),
        "umaBond": "500",
        "umaReward": "5",
        "volume24hrClob": market.volume_24h,
        "volume1wkClob": market.volume_24h * 5,
        "volume1moClob": market.volume_24h * 20,
        "volume1yrClob": volume,
        "volumeClob": volume,
        "liquidityClob": liquidity,
        "customLiveness": 0,
        "acceptingOrders": trading,
        "negRisk": event.neg_risk,
        "ready": False,
        "funded": False,
        "acceptingOrdersTimestamp": times["created"],
        "cyom": False,
        "competitive": 0.8,
        "pagerDutyNotificationEnabled": False,
        "approved": True,
        "rewardsMinSize": 20,
        "rewardsMaxSpread": 3.5,
        "spread": round(spread, 3),
        "lastTradePrice": (market.last_m or 0) / MILLI,
        "bestBid": market.bid_m / MILLI,
        "bestAsk": market.ask_m / MILLI,
        "automaticallyActive": True,
        "clearBookOnStart": True,
        "seriesColor": "",
        "showGmpSeries": False,
        "showGmpOutcome": False,
        "manualActivation": False,
        "negRiskOther": False,
        "umaResolutionStatuses": "[]",
        "pendingDeployment": False,
        "deploying": False,
        "deployingTimestamp": times["created"],
        "rfqEnabled": False,
        "holdingRewardsEnabled": False,
        "feesEnabled": False,
        "requiresTranslation": False,
        "feeType": None
        if event.category == "Culture"
        else f"{event.category.split()[0].lower()}_fees",
    }
    if event.neg_risk:
        data["negRiskMarketID"] = event.neg_risk_id
        data["negRiskRequestID"] = "0x" + digest(market.key, "request").hex()
    change = round((_displayed(market) * MILLI - _shown(day_ago)) / MILLI, 4)
    if change:  # absent (not zero) when nothing moved, as Gamma does
        data["oneDayPriceChange"] = change
    if not trading:
        data["closedTime"] = world.time_of(now).strftime("%Y-%m-%d %H:%M:%S+00")
    if not nested:
        data["makerBaseFee"] = 1000
        data["takerBaseFee"] = 1000
        data["events"] = [_event_summary(event, world, now)]
        data["clobRewards"] = []
        data["feeSchedule"] = {"exponent": 1, "rate": 0.04, "takerOnly": True, "rebateRate": 0.25}
    return data


def _times(market: PolyMarket) -> dict[str, Any]:
    """Dates that never change, formatted once per market."""
    if not market.static:
        market.static.update(
            end=iso(market.end),
            created=iso(market.created),
            end_date=market.end.date().isoformat(),
            created_date=market.created.date().isoformat(),
        )
    return market.static


@functools.lru_cache(maxsize=16)
def _iso_at(start: datetime, seconds: float) -> str:
    return iso(start + timedelta(seconds=seconds))


def _shown(quote: tuple[int, int, int | None]) -> float:
    bid, ask, last = quote
    return (
        displayed_price(bid / MILLI, ask / MILLI, None if last is None else last / MILLI) or 0.0
    ) * MILLI


def _event_summary(event: PolyEvent, world: World, now: float) -> dict[str, Any]:
    volume = sum(m.volume for m in event.markets)
    liquidity = sum(m.liquidity for m in event.markets)
    volume_24h = sum(m.volume_24h for m in event.markets)
    data: dict[str, Any] = {
        "id": event.event_id,
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "description": f"Simulated event. {event.title}",
        "resolutionSource": "",
        "startDate": iso(event.created),
        "creationDate": iso(event.created),
        "endDate": iso(event.end) if event.dated else None,
        "image": IMAGE,
        "icon": IMAGE,
        "active": True,
        "closed": event.closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": liquidity,
        "volume": volume,
        "openInterest": volume * 0.1,
        "sortBy": "price",
        "createdAt": iso(event.created),
        "updatedAt": iso(world.time_of(now)),
        "competitive": 0.9,
        "volume24hr": volume_24h,
        "volume1wk": volume_24h * 5,
        "volume1mo": volume_24h * 20,
        "volume1yr": volume,
        "enableOrderBook": True,
        "liquidityClob": liquidity,
        "negRisk": event.neg_risk,
        "commentCount": len(event.markets) * 7,
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": True,
        "enableNegRisk": event.neg_risk,
        "automaticallyActive": True,
        "gmpChartMode": "default",
        "negRiskAugmented": False,
        "estimateValue": False,
        "cumulativeMarkets": False,
        "pendingDeployment": False,
        "deploying": False,
        "deployingTimestamp": iso(event.created),
        "requiresTranslation": False,
    }
    if event.neg_risk:
        data["negRiskMarketID"] = event.neg_risk_id
    return data


def gamma_tag(tag: tuple[str, str, str]) -> dict[str, Any]:
    tag_id, label, slug = tag
    return {
        "id": tag_id,
        "label": label,
        "slug": slug,
        "forceShow": False,
        "publishedAt": "2024-03-07 20:44:01.258+00",
        "createdAt": "2024-03-07T20:41:56.773Z",
        "updatedAt": "2026-03-09T22:35:06.772403Z",
        "requiresTranslation": False,
    }


def gamma_event(event: PolyEvent, world: World, now: float) -> dict[str, Any]:
    data = _event_summary(event, world, now)
    data["markets"] = [gamma_market(m, world, now, nested=True) for m in event.markets]
    data["tags"] = [gamma_tag(t) for t in event.tags]
    return data


def _corrupt_market(data: dict[str, Any]) -> None:
    """What a malformed record looks like: JSON-string fields that do not decode."""
    data["clobTokenIds"] = data["clobTokenIds"][:20]
    data["outcomePrices"] = '["0.5", "n/a"'


_MARKET_ORDER = {
    "volume24hr": lambda m: m.volume_24h,
    "volume_24hr": lambda m: m.volume_24h,
    "volume_num": lambda m: m.volume,
    "volumeNum": lambda m: m.volume,
    "volume": lambda m: m.volume,
    "liquidity_num": lambda m: m.liquidity,
    "liquidityNum": lambda m: m.liquidity,
    "liquidity": lambda m: m.liquidity,
    "end_date": lambda m: m.end,
    "endDate": lambda m: m.end,
    "start_date": lambda m: m.created,
    "startDate": lambda m: m.created,
    "id": lambda m: m.index,
}
_EVENT_ORDER = {
    "volume24hr": lambda e: sum(m.volume_24h for m in e.markets),
    "volume_24hr": lambda e: sum(m.volume_24h for m in e.markets),
    "volume": lambda e: sum(m.volume for m in e.markets),
    "liquidity": lambda e: sum(m.liquidity for m in e.markets),
    "end_date": lambda e: e.end,
    "endDate": lambda e: e.end,
    "start_date": lambda e: e.created,
    "startDate": lambda e: e.created,
    "id": lambda e: e.index,
}


def _ordered(request: web.Request, items: list[Any], keys: dict[str, Any]) -> list[Any]:
    order = [o for o in request.query.get("order", "").split(",") if o]
    for name in reversed(order):
        if name not in keys:
            raise Reject(422, {"type": "validation error", "error": f"invalid order: {name}"})
    ascending = bool_param(request, "ascending")
    descending = ascending is False
    for name in reversed(order):
        items = sorted(items, key=keys[name], reverse=descending)
    return items


def _select_markets(request: web.Request, world: World) -> list[PolyMarket]:
    closed = bool_param(request, "closed")
    closed = False if closed is None else closed
    ids = set(list_param(request, "id", "id[]"))
    slugs = set(list_param(request, "slug", "slug[]"))
    conditions = set(list_param(request, "condition_ids", "condition_ids[]"))
    tokens = set(list_param(request, "clob_token_ids", "clob_token_ids[]"))
    tag = request.query.get("tag_id")
    picked = []
    for m in world.poly_markets:
        if (not m.trading) != closed:
            continue
        if ids and m.gamma_id not in ids:
            continue
        if slugs and m.slug not in slugs:
            continue
        if conditions and m.condition_id not in conditions:
            continue
        if tokens and not tokens.intersection(m.tokens):
            continue
        if tag and all(t[0] != tag for t in m.event.tags):
            continue
        picked.append(m)
    return _ordered(request, picked, _MARKET_ORDER)


def _select_events(request: web.Request, world: World) -> list[PolyEvent]:
    closed = bool_param(request, "closed")
    tag = request.query.get("tag_id")
    tag_slug = request.query.get("tag_slug")
    ids = set(list_param(request, "id", "id[]"))
    ending_after = _time_param(request, "end_date_min")
    ending_before = _time_param(request, "end_date_max")
    picked = []
    for e in world.poly_events:
        if closed is not None and e.closed != closed:
            continue
        if (ending_after or ending_before) and not e.dated:
            continue  # no end date: no end date filter matches it
        if (ending_after and e.end < ending_after) or (ending_before and e.end > ending_before):
            continue
        if tag and all(t[0] != tag for t in e.tags):
            continue
        if tag_slug and all(t[2] != tag_slug for t in e.tags):
            continue
        if ids and e.event_id not in ids:
            continue
        picked.append(e)
    return _ordered(request, picked, _EVENT_ORDER)


def _time_param(request: web.Request, name: str) -> datetime | None:
    """An ISO date-time filter (``end_date_min`` …); a bad one is Gamma's 400."""
    raw = request.query.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _bad(f"invalid {name}: {raw!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Gamma:
    def __init__(self, host: Host) -> None:
        self.host = host

    def app(self) -> web.Application:
        app = web.Application()
        h, v = self.host, "polymarket"
        app.router.add_get("/markets", route(h, v, "gamma /markets", self.markets))
        app.router.add_get(
            "/markets/keyset", route(h, v, "gamma /markets/keyset", self.markets_keyset)
        )
        app.router.add_get("/events", route(h, v, "gamma /events", self.events))
        app.router.add_get(
            "/events/keyset", route(h, v, "gamma /events/keyset", self.events_keyset)
        )
        app.router.add_get("/tags", route(h, v, "gamma /tags", self.tags))
        return app

    def _markets(
        self, name: str, picked: list[PolyMarket], start: int, limit: int, now: float
    ) -> list[dict[str, Any]]:
        world, page = self.host.world, start // max(limit, 1) + 1
        rows = [gamma_market(m, world, now, nested=False) for m in picked[start : start + limit]]
        self._served(name, picked[start : start + limit], now)
        if rows and self.host.faults.malformed("polymarket", name, page, now):
            _corrupt_market(rows[0])
            self.host.truth.malformed.append((name, rows[0]["conditionId"]))
        return rows

    def _served(self, name: str, markets: list[PolyMarket], now: float) -> None:
        truth = self.host.truth
        truth.record_listing(name, [m.condition_id for m in markets])
        for m in markets:
            for token in (0, 1):
                bid, ask, last = _gamma_quote(m, token)
                truth.quote(m.tokens[token], name, now, bid, ask, last)

    async def markets(self, request: web.Request, now: float) -> object:
        limit = min(int_param(request, "limit", 20, _bad), GAMMA_MARKETS_LIMIT)
        offset = int_param(request, "offset", 0, _bad)
        if offset > GAMMA_OFFSET_LIMIT:
            raise _bad("offset too large, use /markets/keyset")
        picked = _select_markets(request, self.host.world)
        return self._markets("gamma /markets", picked, offset, limit, now)

    async def markets_keyset(self, request: web.Request, now: float) -> object:
        _no_offset(request)
        limit = min(int_param(request, "limit", 20, _bad), GAMMA_MARKETS_LIMIT)
        start = _after(request)
        picked = _select_markets(request, self.host.world)
        rows = self._markets("gamma /markets/keyset", picked, start, limit, now)
        return _keyset_page("markets", rows, start + limit, len(picked))

    def _events(
        self, name: str, picked: list[PolyEvent], start: int, limit: int, now: float
    ) -> list[dict[str, Any]]:
        world, page = self.host.world, start // max(limit, 1) + 1
        chosen = picked[start : start + limit]
        rows = [gamma_event(e, world, now) for e in chosen]
        self._served(name, [m for e in chosen for m in e.markets], now)
        if rows and self.host.faults.malformed("polymarket", name, page, now):
            _corrupt_market(rows[0]["markets"][0])
            self.host.truth.malformed.append((name, rows[0]["markets"][0]["conditionId"]))
        return rows

    async def events(self, request: web.Request, now: float) -> object:
        limit = int_param(request, "limit", 20, _bad)
        offset = int_param(request, "offset", 0, _bad)
        if limit < 0 or offset < 0:
            raise _bad("limit and offset must not be negative")
        picked = _select_events(request, self.host.world)
        return self._events("gamma /events", picked, offset, limit, now)

    async def events_keyset(self, request: web.Request, now: float) -> object:
        _no_offset(request)
        limit = min(int_param(request, "limit", 20, _bad), GAMMA_EVENTS_KEYSET_LIMIT)
        start = _after(request)
        picked = _select_events(request, self.host.world)
        rows = self._events("gamma /events/keyset", picked, start, limit, now)
        return _keyset_page("events", rows, start + limit, len(picked))

    async def tags(self, request: web.Request, now: float) -> object:
        limit = int_param(request, "limit", 100, _bad)
        offset = int_param(request, "offset", 0, _bad)
        return [gamma_tag(t) for t in self.host.world.tags[offset : offset + limit]]


def _gamma_quote(market: PolyMarket, token: int) -> tuple[float, float, float | None]:
    """The quote Gamma's fields state for a token (bestBid/bestAsk/lastTradePrice are the first
    outcome's; the second outcome's are their mirror)."""
    bid, ask = market.bid_m / MILLI, market.ask_m / MILLI
    last = None if market.last_m is None else market.last_m / MILLI
    if token == 0:
        return bid, ask, last
    return round(1 - ask, 3), round(1 - bid, 3), None if last is None else round(1 - last, 3)


def _keyset_page(key: str, rows: list[Any], end: int, total: int) -> dict[str, Any]:
    """A keyset page: ``next_cursor`` is omitted on the last page."""
    body: dict[str, Any] = {key: rows}
    if end < total:
        body["next_cursor"] = encode_cursor(end)
    return body


def _no_offset(request: web.Request) -> None:
    if "offset" in request.query:
        raise Reject(
            422, {"type": "validation error", "error": "offset is not allowed on keyset endpoints"}
        )


def _after(request: web.Request) -> int:
    cursor = request.query.get("after_cursor")
    return decode_cursor(cursor, _bad) if cursor else 0


# --- CLOB ---------------------------------------------------------------------------------------


def clob_book(market: PolyMarket, token: int, world: World, now: float) -> dict[str, Any]:
    bids, asks = market.token_book(token)
    _, _, last = market.token_quote(token)
    return {
        "market": market.condition_id,
        "asset_id": market.tokens[token],
        "timestamp": str(ms(world.time_of(now))),
        "hash": digest(market.tokens[token], market.bid_m, market.ask_m, size=20).hex(),
        # Best bid and best ask are the *last* elements (API_NOTES 1.5, seen in every capture).
        "bids": [{"price": trim(p), "size": trim_float(s)} for p, s in reversed(bids)],
        "asks": [{"price": trim(p), "size": trim_float(s)} for p, s in reversed(asks)],
        "min_order_size": "5",
        "tick_size": trim(market.tick_m),
        "neg_risk": market.event.neg_risk,
        "last_trade_price": "" if last is None or not market.trades else trim(last),
    }


class Clob:
    def __init__(self, host: Host) -> None:
        self.host = host

    def app(self) -> web.Application:
        app = web.Application()
        h, v = self.host, "polymarket"
        app.router.add_get("/book", route(h, v, "clob /book", self.book))
        app.router.add_post("/books", route(h, v, "clob /books", self.books))
        app.router.add_get("/midpoint", route(h, v, "clob /midpoint", self.midpoint))
        app.router.add_get("/midpoints", route(h, v, "clob /midpoints", self.midpoints))
        app.router.add_post("/midpoints", route(h, v, "clob /midpoints", self.midpoints))
        app.router.add_get("/price", route(h, v, "clob /price", self.price))
        app.router.add_get("/prices", route(h, v, "clob /prices", self.prices))
        app.router.add_post("/prices", route(h, v, "clob /prices", self.prices))
        app.router.add_get(
            "/last-trades-prices", route(h, v, "clob /last-trades-prices", self.last_trades)
        )
        app.router.add_post(
            "/last-trades-prices", route(h, v, "clob /last-trades-prices", self.last_trades)
        )
        app.router.add_get("/prices-history", route(h, v, "clob /prices-history", self.history))
        app.router.add_post(
            "/batch-prices-history",
            route(h, v, "clob /batch-prices-history", self.batch_history),
        )
        return app

    def _token(self, token_id: str | None) -> tuple[PolyMarket, int]:
        if not token_id or not token_id.isdigit():
            raise _bad("Invalid token id")
        found = self.host.world.by_token.get(token_id)
        if found is None or not found[0].trading:
            raise Reject(404, {"error": "No orderbook exists for the requested token id"})
        return found

    def _serve_book(self, name: str, token_id: str | None, now: float) -> dict[str, Any]:
        market, token = self._token(token_id)
        book = clob_book(market, token, self.host.world, now)
        bid, ask, last = market.token_quote(token)
        self.host.truth.quote(
            market.tokens[token],
            name,
            now,
            None if bid is None else bid / MILLI,
            None if ask is None else ask / MILLI,
            None if last is None or not market.trades else last / MILLI,
        )
        return book

    async def book(self, request: web.Request, now: float) -> object:
        return self._serve_book("clob /book", request.query.get("token_id"), now)

    async def _batch(self, request: web.Request) -> list[dict[str, Any]]:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise _bad("Invalid payload") from None
        if not isinstance(body, list) or not all(isinstance(i, dict) for i in body):
            raise _bad("Invalid payload")
        if len(body) > CLOB_BATCH_LIMIT:
            raise _bad("Payload exceeds the limit")
        return body

    async def books(self, request: web.Request, now: float) -> object:
        books = []
        for item in await self._batch(request):
            try:
                books.append(self._serve_book("clob /books", item.get("token_id"), now))
            except Reject:
                continue  # unknown or resolved tokens are left out of a batch
        return books

    async def midpoint(self, request: web.Request, now: float) -> object:
        market, token = self._token(request.query.get("token_id"))
        return {"mid": _mid(market, token)}

    async def midpoints(self, request: web.Request, now: float) -> object:
        if request.method == "POST":
            tokens = [str(i.get("token_id")) for i in await self._batch(request)]
        else:
            tokens = list_param(request, "token_ids")
        result = {}
        for token_id in tokens:
            found = self.host.world.by_token.get(token_id)
            if found is not None and found[0].trading:
                result[token_id] = _mid(*found)
        return result

    async def price(self, request: web.Request, now: float) -> object:
        market, token = self._token(request.query.get("token_id"))
        side = request.query.get("side", "").upper()
        if side not in ("BUY", "SELL"):
            raise _bad("Invalid side")
        return {"price": _side_price(market, token, side)}

    async def prices(self, request: web.Request, now: float) -> object:
        if request.method == "POST":
            pairs = [
                (str(i.get("token_id")), str(i.get("side"))) for i in await self._batch(request)
            ]
        else:
            tokens, sides = list_param(request, "token_ids"), list_param(request, "sides")
            if len(tokens) != len(sides):
                raise _bad("token_ids and sides must have the same length")
            pairs = list(zip(tokens, sides, strict=True))
        result: dict[str, dict[str, float]] = {}
        for token_id, side in pairs:
            found = self.host.world.by_token.get(token_id)
            if found is not None and found[0].trading and side.upper() in ("BUY", "SELL"):
                value = _side_price(*found, side.upper())
                result.setdefault(token_id, {})[side.upper()] = float(value)
        return result

    async def last_trades(self, request: web.Request, now: float) -> object:
        if request.method == "POST":
            tokens = [str(i.get("token_id")) for i in await self._batch(request)]
        else:
            tokens = list_param(request, "token_ids")
        rows = []
        for token_id in tokens:
            found = self.host.world.by_token.get(token_id)
            if found is None:
                continue
            market, token = found
            trade = next((t for t in reversed(market.trades) if t.token == token), None)
            rows.append(
                {
                    "token_id": token_id,
                    "price": trim(trade.price_m) if trade else "0.5",
                    "side": ("BUY" if trade.buy else "SELL") if trade else "",
                }
            )
        return rows

    async def history(self, request: web.Request, now: float) -> object:
        token_id = request.query.get("market")
        if not token_id or token_id not in self.host.world.by_token:
            raise _bad("Invalid token id")
        market, token = self.host.world.by_token[token_id]
        fidelity = int_param(request, "fidelity", 1, _bad)
        if fidelity < 1:
            raise _bad("invalid fidelity")
        world = self.host.world
        now_ts = int(world.time_of(now).timestamp())
        start_param, end_param = request.query.get("startTs"), request.query.get("endTs")
        interval = request.query.get("interval")
        if start_param is not None or end_param is not None:
            start_ts = int_param(request, "startTs", 0, _bad)
            end_ts = int_param(request, "endTs", now_ts, _bad)
            if (
                start_param is not None
                and end_param is not None
                and (end_ts - start_ts > HISTORY_WINDOW.total_seconds())
            ):
                raise _bad("'startTs' and 'endTs' interval is too long")
        elif interval in INTERVALS:
            if fidelity < MIN_FIDELITY.get(interval, 1):
                raise _bad(
                    f"invalid fidelity for interval {interval}: minimum is {MIN_FIDELITY[interval]}"
                )
            start_ts, end_ts = now_ts - INTERVALS[interval], now_ts
        elif interval in ("max", "all"):
            if not market.trading and fidelity < 720:
                return {"history": []}  # as recorded for resolved markets
            start_ts, end_ts = int(market.created.timestamp()), now_ts
        else:
            raise _bad("invalid filters: 'interval' or 'startTs' and 'endTs' are required")
        return {"history": history_points(world, market, token, start_ts, end_ts, fidelity, now)}

    async def batch_history(self, request: web.Request, now: float) -> object:
        """``POST /batch-prices-history``: up to :data:`HISTORY_BATCH` tokens, each token's
        points as ``GET /prices-history`` gives them (a token it does not know is left out)."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            raise _bad("invalid body") from None
        tokens = body.get("markets") if isinstance(body, dict) else None
        if not isinstance(tokens, list) or not tokens:
            raise _bad("'markets' is required")
        if len(tokens) > HISTORY_BATCH:
            raise _bad(f"at most {HISTORY_BATCH} markets per request")
        fidelity = body.get("fidelity", 1)
        start_ts, end_ts = body.get("start_ts"), body.get("end_ts")
        if not all(isinstance(v, int) for v in (fidelity, start_ts, end_ts)) or fidelity < 1:
            raise _bad("invalid filters: 'start_ts', 'end_ts' and 'fidelity' are required")
        if end_ts - start_ts > HISTORY_WINDOW.total_seconds():
            raise _bad("'start_ts' and 'end_ts' interval is too long")
        world = self.host.world
        history = {}
        for token_id in tokens:
            found = world.by_token.get(str(token_id))
            if found is not None:
                market, token = found
                history[str(token_id)] = history_points(
                    world, market, token, start_ts, end_ts, fidelity, now
                )
        return {"history": history}


def history_points(
    world: World,
    market: PolyMarket,
    token: int,
    start_ts: int,
    end_ts: int,
    fidelity: int,
    now: float,
) -> list[dict[str, Any]]:
    """A token's displayed price every ``fidelity`` minutes (on the epoch's grid) from
    ``start_ts`` to ``end_ts``, not before the market's creation nor after now; the world's past
    before the simulator started."""
    origin = world.start
    origin_ts = origin.timestamp()
    step = fidelity * 60
    first = max(start_ts, math.ceil(market.created.timestamp()))
    first = -(-first // step) * step
    last = min(end_ts, int(world.time_of(now).timestamp()))
    points = []
    for t in range(first, last + 1, step):
        quote = market.quote_then(t - origin_ts, origin)
        if quote is None:
            continue
        price = _shown(quote) / MILLI
        points.append({"t": t, "p": round(price if token == 0 else 1 - price, 4)})
    return points


def _mid(market: PolyMarket, token: int) -> str:
    bid, ask, _ = market.token_quote(token)
    if bid is None or ask is None:
        return trim(bid or ask or 0)
    return f"{(bid + ask) / 2 / MILLI:.4f}".rstrip("0").rstrip(".")


def _side_price(market: PolyMarket, token: int, side: str) -> str:
    bid, ask, _ = market.token_quote(token)
    value = bid if side == "BUY" else ask
    return trim(value or 0)


# --- Data API -----------------------------------------------------------------------------------


def data_trade(trade: SimTrade, world: World) -> dict[str, Any]:
    market = trade.market
    assert isinstance(market, PolyMarket)
    return {
        "proxyWallet": trade.wallet,
        "side": "BUY" if trade.buy else "SELL",
        "asset": market.tokens[trade.token],
        "conditionId": market.condition_id,
        "size": trade.size,
        "price": trade.price_m / MILLI,
        "timestamp": int(world.time_of(trade.seconds).timestamp()),
        "title": market.title,
        "slug": market.slug,
        "icon": IMAGE,
        "eventSlug": market.event.slug,
        "outcome": market.outcomes[trade.token],
        "outcomeIndex": trade.token,
        "name": "",
        "pseudonym": "",
        "bio": "",
        "profileImage": "",
        "profileImageOptimized": "",
        "transactionHash": trade.trade_id,
    }


class DataApi:
    def __init__(self, host: Host) -> None:
        self.host = host

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/trades", route(self.host, "polymarket", "data /trades", self.trades))
        return app

    async def trades(self, request: web.Request, now: float) -> object:
        world = self.host.world
        limit = min(max(int_param(request, "limit", 100, _bad), 0), DATA_OFFSET_LIMIT)
        offset = int_param(request, "offset", 0, _bad)
        if offset > DATA_OFFSET_LIMIT:
            raise _bad(f"offset must not exceed {DATA_OFFSET_LIMIT}")
        conditions = list_param(request, "market")
        side = request.query.get("side", "").upper()
        if conditions:
            markets = [world.by_key[c] for c in conditions if c in world.by_key]
            pool = sorted((t for m in markets for t in m.trades), key=lambda t: -t.seq)
        else:
            pool = list(reversed(world.trades))
            pool = [t for t in pool if t.market.venue == "polymarket"]
        if side in ("BUY", "SELL"):
            pool = [t for t in pool if t.buy == (side == "BUY")]
        chosen = pool[offset : offset + limit]
        rows = [data_trade(t, world) for t in chosen]
        page = offset // max(limit, 1) + 1
        if rows and self.host.faults.malformed("polymarket", "data /trades", page, now):
            rows[0]["price"] = "n/a"
            self.host.truth.malformed.append(("data /trades", rows[0]["transactionHash"]))
        return rows
