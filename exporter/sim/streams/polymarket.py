"""Polymarket's simulated sockets: the CLOB market channel (``/ws/market``) and the real-time
data socket's trades. Books streamed here are the same books REST serves: deltas are the level
differences between the quote before and after each change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from exporter.sim.polymarket import clob_book, data_trade
from exporter.sim.streams.connection import Connection, level_diff, mirror, serve_pinged
from exporter.sim.wire import ms, trim, trim_float
from exporter.sim.world import MILLI, Change, PolyMarket, digest

if TYPE_CHECKING:
    from exporter.sim.wire import Host

FRAME_BATCH = 100


@dataclass(eq=False)
class PolyConnection:
    conn: Connection
    assets: set[str] = field(default_factory=set)
    custom: bool = False
    last_ping: float = field(default_factory=time.monotonic)


class PolymarketStream:
    """``/ws/market``: subscribe by token ids, text ``PING``/``PONG``, frames that are one object
    or an array of them (API_NOTES 1.7)."""

    def __init__(self, host: Host, ping_timeout: float) -> None:
        self.host = host
        self.ping_timeout = ping_timeout
        self.clients: set[PolyConnection] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client = PolyConnection(Connection(ws, "polymarket", self.host))
        await serve_pinged(ws, client, self.clients, self._command)
        return ws

    def _command(self, client: PolyConnection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return  # the venue ignores what it cannot read
        if not isinstance(request, dict) or not isinstance(request.get("assets_ids"), list):
            return
        ids = [str(a) for a in request["assets_ids"]]
        if request.get("custom_feature_enabled"):
            client.custom = True
        if request.get("operation") == "unsubscribe":
            client.assets.difference_update(ids)
            return
        if request.get("type") not in (None, "market", "MARKET") and "operation" not in request:
            return
        fresh = [a for a in ids if a not in client.assets and a in self.host.world.by_token]
        client.assets.update(ids)
        self.host.sync()
        books = [self._book(a) for a in fresh]
        self._send(client, [b for b in books if b is not None])

    def _book(self, asset: str) -> dict[str, Any] | None:
        market, token = self.host.world.by_token[asset]
        if not market.trading:
            return None
        book = clob_book(market, token, self.host.world, self.host.world.step)
        return {"event_type": "book", **{k: book[k] for k in _BOOK_KEYS}}

    def _send(self, client: PolyConnection, messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), FRAME_BATCH):
            chunk = messages[i : i + FRAME_BATCH]
            kind = chunk[0]["event_type"] if len(chunk) == 1 else "array"
            client.conn.send(chunk[0] if len(chunk) == 1 else chunk, kind)

    def publish(self, changes: list[Change], now: float) -> None:
        if not self.clients:
            return
        silent = self.host.faults.silent("polymarket", now)
        for client in list(self.clients):
            if time.monotonic() - client.last_ping > self.ping_timeout:
                client.conn.drop(1000, "no PING received")
                continue
            if silent:
                continue
            messages: list[dict[str, Any]] = []
            for change in changes:
                market = change.market
                if not isinstance(market, PolyMarket):
                    continue
                wanted = [i for i in (0, 1) if market.tokens[i] in client.assets]
                if wanted:
                    messages.extend(self._messages(change, market, wanted, client.custom))
            if messages:
                self._send(client, messages)

    def _messages(
        self, change: Change, market: PolyMarket, tokens: list[int], custom: bool
    ) -> list[dict[str, Any]]:
        world = self.host.world
        stamp = str(ms(world.time_of(change.seconds)))
        out: list[dict[str, Any]] = []
        if change.status_changed:
            if not market.trading and custom:
                out.append(
                    {
                        "event_type": "market_resolved",
                        "id": market.gamma_id,
                        "market": market.condition_id,
                        "assets_ids": list(market.tokens),
                        "timestamp": stamp,
                    }
                )
            return out
        if change.before[2] != change.after[2]:
            for token in tokens:  # a new grid: clients drop the book and take the next one
                out.append(
                    {
                        "event_type": "tick_size_change",
                        "asset_id": market.tokens[token],
                        "market": market.condition_id,
                        "old_tick_size": trim(change.before[2]),
                        "new_tick_size": trim(change.after[2]),
                        "timestamp": stamp,
                    }
                )
                book = self._book(market.tokens[token])
                if book is not None:
                    out.append(book)
        else:
            old_bids, old_asks = market.yes_book(change.before)
            new_bids, new_asks = market.yes_book(change.after)
            entries = []
            for token in tokens:
                if token == 0:
                    sides = ((old_bids, new_bids, "BUY"), (old_asks, new_asks, "SELL"))
                else:
                    sides = (
                        (mirror(old_asks), mirror(new_asks), "BUY"),
                        (mirror(old_bids), mirror(new_bids), "SELL"),
                    )
                best_bid = sides[0][1][0][0] if sides[0][1] else None
                best_ask = sides[1][1][0][0] if sides[1][1] else None
                for old, new, side in sides:
                    for price, _, size in level_diff(old, new):
                        entries.append(
                            {
                                "asset_id": market.tokens[token],
                                "price": trim(price),
                                "size": trim_float(size),
                                "side": side,
                                "hash": digest(
                                    market.tokens[token], change.seconds, price, size=20
                                ).hex(),
                                "best_bid": trim(best_bid or 0),
                                "best_ask": trim(best_ask if best_ask is not None else MILLI),
                            }
                        )
                if custom:
                    out.append(
                        {
                            "event_type": "best_bid_ask",
                            "market": market.condition_id,
                            "asset_id": market.tokens[token],
                            "best_bid": trim(best_bid or 0),
                            "best_ask": trim(best_ask if best_ask is not None else MILLI),
                            "spread": trim((best_ask or MILLI) - (best_bid or 0)),
                            "timestamp": stamp,
                        }
                    )
            if entries:
                out.insert(
                    0,
                    {
                        "market": market.condition_id,
                        "price_changes": entries,
                        "timestamp": stamp,
                        "event_type": "price_change",
                    },
                )
        for trade in change.trades:
            if trade.token in tokens:
                out.append(
                    {
                        "asset_id": market.tokens[trade.token],
                        "event_type": "last_trade_price",
                        "fee_rate_bps": "0",
                        "market": market.condition_id,
                        "price": trim(trade.price_m),
                        "side": "BUY" if trade.buy else "SELL",
                        "size": trim_float(trade.size),
                        "timestamp": stamp,
                    }
                )
        return out

    def drop_all(self) -> int:
        for client in list(self.clients):
            client.conn.drop(1012, "simulated drop")
        return len(self.clients)


_BOOK_KEYS = (
    "market",
    "asset_id",
    "timestamp",
    "hash",
    "bids",
    "asks",
    "tick_size",
    "last_trade_price",
)


@dataclass(eq=False)
class RtdsConnection:
    conn: Connection
    trades: bool = False
    last_ping: float = field(default_factory=time.monotonic)


class RtdsStream:
    """Polymarket's real-time data socket (API_NOTES 1.8), the ``activity``/``trades`` topic only:
    ``{"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]}``, text
    ``PING``/``PONG``, each trade as ``{topic, type, timestamp (ms), payload}`` whose payload is the
    Data API's trade row (``timestamp`` in seconds)."""

    def __init__(self, host: Host, ping_timeout: float) -> None:
        self.host = host
        self.ping_timeout = ping_timeout
        self.clients: set[RtdsConnection] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client = RtdsConnection(Connection(ws, "polymarket", self.host))
        await serve_pinged(ws, client, self.clients, self._command)
        return ws

    def _command(self, client: RtdsConnection, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(request, dict):
            return
        wanted = any(
            isinstance(s, dict) and s.get("topic") == "activity"
            and s.get("type") in ("trades", "*")
            for s in request.get("subscriptions") or []
        )  # fmt: skip
        if wanted:
            client.trades = request.get("action") == "subscribe"

    def publish(self, changes: list[Change], now: float) -> None:
        if not self.clients:
            return
        world = self.host.world
        silent = self.host.faults.silent("polymarket", now)
        messages = [
            {"connection_id": "sim", "payload": data_trade(trade, world),
             "timestamp": ms(world.time_of(trade.seconds)), "topic": "activity",
             "type": "trades"}
            for change in changes
            if isinstance(change.market, PolyMarket)
            for trade in change.trades
        ]  # fmt: skip
        for client in list(self.clients):
            if time.monotonic() - client.last_ping > self.ping_timeout:
                client.conn.drop(1000, "no PING received")
                continue
            if silent or not client.trades:
                continue
            for message in messages:
                client.conn.send(message, "trades")

    def drop_all(self) -> int:
        for client in list(self.clients):
            client.conn.drop(1012, "simulated drop")
        return len(self.clients)
