"""Simulated websockets: Polymarket's CLOB market channel and Kalshi's Trade API stream.

Publishing is synchronous (the world hands over its changes); each connection has a bounded
outbox drained by its own task, so a slow client is cut off instead of slowing the simulator.
Books streamed here are the same books REST serves: deltas are the level differences between the
quote before and after each change.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson
from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from exporter.sim.polymarket import clob_book, data_trade
from exporter.sim.wire import dollars, fp, iso, ms, trim, trim_float
from exporter.sim.world import MILLI, Change, KalshiMarket, PolyMarket, digest

if TYPE_CHECKING:
    from exporter.sim.wire import Host

OUTBOX_LIMIT = 10_000
FRAME_BATCH = 100
KALSHI_WS_PATH = "/trade-api/ws/v2"
KALSHI_CHANNELS = ("orderbook_delta", "ticker", "trade")
SIGNATURE_WINDOW_MS = 60_000


def level_diff(
    old: list[tuple[int, float]], new: list[tuple[int, float]]
) -> list[tuple[int, float, float]]:
    """``(price, old size, new size)`` for every level that appeared, vanished or changed."""
    before, after = dict(old), dict(new)
    return [
        (p, before.get(p, 0.0), after.get(p, 0.0))
        for p in sorted(before.keys() | after.keys())
        if before.get(p, 0.0) != after.get(p, 0.0)
    ]


class Connection:
    """One client socket with an outbox of frames."""

    def __init__(self, ws: web.WebSocketResponse, venue: str, host: Host) -> None:
        self.ws = ws
        self.venue = venue
        self.host = host
        self.outbox: asyncio.Queue[str | None] = asyncio.Queue(OUTBOX_LIMIT)
        self.closed = False
        self._writer = asyncio.create_task(self._drain())

    def send(self, message: object, kind: str) -> None:
        self.send_raw(orjson.dumps(message).decode(), kind)

    def send_raw(self, text: str, kind: str) -> None:
        if self.closed:
            return
        try:
            self.outbox.put_nowait(text)
            self.host.truth.frames[(self.venue, kind)] += 1
        except asyncio.QueueFull:
            self.drop(1008, "client too slow")

    def drop(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)
        asyncio.get_running_loop().create_task(self.ws.close(code=code, message=reason.encode()))

    async def _drain(self) -> None:
        while True:
            text = await self.outbox.get()
            if text is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                self.closed = True
                return

    async def finish(self) -> None:
        self.closed = True
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer


# --- Polymarket ---------------------------------------------------------------------------------


@dataclass(eq=False)
class PolyConnection:
    conn: Connection
    assets: set[str] = field(default_factory=set)
    custom: bool = False
    last_ping: float = field(default_factory=time.monotonic)


class _Pinged(Protocol):
    conn: Connection
    last_ping: float


_C = TypeVar("_C", bound=_Pinged)


async def _serve_pinged(
    ws: web.WebSocketResponse,
    client: _C,
    clients: set[_C],
    command: Callable[[_C, str], None],
) -> None:
    """Read a Polymarket socket until it closes: text ``PING`` is answered ``PONG`` (and noted
    for the ping timeout), any other text is a command."""
    clients.add(client)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            if message.data == "PING":
                client.last_ping = time.monotonic()
                client.conn.send_raw("PONG", "PONG")
                continue
            command(client, message.data)
    finally:
        clients.discard(client)
        await client.conn.finish()


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
        await _serve_pinged(ws, client, self.clients, self._command)
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
                        (_mirror(old_asks), _mirror(new_asks), "BUY"),
                        (_mirror(old_bids), _mirror(new_bids), "SELL"),
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
        await _serve_pinged(ws, client, self.clients, self._command)
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


def _mirror(levels: list[tuple[int, float]]) -> list[tuple[int, float]]:
    return [(MILLI - p, s) for p, s in levels]


# --- Kalshi -------------------------------------------------------------------------------------


@dataclass(eq=False)
class Subscription:
    sid: int
    channel: str
    tickers: set[str] | None
    """None: every market (``ticker`` and ``trade`` without markets)."""
    seq: int = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def covers(self, ticker: str) -> bool:
        return self.tickers is None or ticker in self.tickers


@dataclass(eq=False)
class KalshiConnection:
    conn: Connection
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    next_sid: int = 1


def verify_kalshi_signature(
    headers: Any, keys: dict[str, rsa.RSAPublicKey], path: str = KALSHI_WS_PATH
) -> bool:
    """The handshake's ``KALSHI-ACCESS-*`` headers: a known key, a fresh millisecond timestamp,
    and an RSA-PSS-SHA256 signature of ``timestamp + "GET" + path`` (API_NOTES 2.8)."""
    key_id = headers.get("KALSHI-ACCESS-KEY")
    stamp = headers.get("KALSHI-ACCESS-TIMESTAMP", "")
    signature = headers.get("KALSHI-ACCESS-SIGNATURE", "")
    key = keys.get(key_id or "")
    if key is None or not stamp.isdigit() or not signature:
        return False
    if abs(int(stamp) - int(time.time() * 1000)) > SIGNATURE_WINDOW_MS:
        return False
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            f"{stamp}GET{path}".encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def load_public_keys(keys: dict[str, bytes]) -> dict[str, rsa.RSAPublicKey]:
    loaded = {}
    for key_id, pem in keys.items():
        key = load_pem_public_key(pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError(f"Kalshi key {key_id!r} is not an RSA public key")
        loaded[key_id] = key
    return loaded


class KalshiStream:
    """``/trade-api/ws/v2``: authenticated handshake, ``subscribe`` / ``update_subscription`` /
    ``unsubscribe``, per-subscription ``seq``, server pings."""

    def __init__(self, host: Host, keys: dict[str, rsa.RSAPublicKey], ping_interval: float) -> None:
        self.host = host
        self.keys = keys
        self.ping_interval = ping_interval
        self.clients: set[KalshiConnection] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not verify_kalshi_signature(request.headers, self.keys):
            self.host.truth.responses[("kalshi ws", 401)] += 1
            return web.Response(
                status=401,
                body=orjson.dumps({"code": "token_authentication_failure"}),
                content_type="application/json",
            )
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        client = KalshiConnection(Connection(ws, "kalshi", self.host))
        self.clients.add(client)
        pinger = asyncio.create_task(self._ping(ws))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._command(client, message.data)
        finally:
            pinger.cancel()
            self.clients.discard(client)
            await client.conn.finish()
        return ws

    async def _ping(self, ws: web.WebSocketResponse) -> None:
        while not ws.closed:
            await asyncio.sleep(self.ping_interval)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.ping(b"heartbeat")

    def _error(self, client: KalshiConnection, cid: object, code: int, text: str) -> None:
        client.conn.send({"id": cid, "type": "error", "msg": {"code": code, "msg": text}}, "error")

    def _command(self, client: KalshiConnection, text: str) -> None:
        try:
            command = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._error(client, None, 1, "Unable to process message")
            return
        if not isinstance(command, dict):
            self._error(client, None, 1, "Unable to process message")
            return
        cid, params = command.get("id"), command.get("params")
        if not isinstance(params, dict):
            self._error(client, cid, 2, "Params required")
            return
        self.host.sync()
        name = command.get("cmd")
        if name == "subscribe":
            self._subscribe(client, cid, params)
        elif name == "update_subscription":
            self._update(client, cid, params)
        elif name == "unsubscribe":
            for sid in params.get("sids") or []:
                sub = client.subscriptions.pop(sid, None)
                if sub is not None:
                    client.conn.send(
                        {"id": cid, "sid": sid, "seq": sub.next_seq(), "type": "unsubscribed"},
                        "unsubscribed",
                    )
        else:
            self._error(client, cid, 5, "Unknown command")

    def _tickers(
        self, client: KalshiConnection, cid: object, params: dict[str, Any]
    ) -> list[str] | None:
        tickers = params.get("market_tickers")
        if tickers is None and params.get("market_ticker"):
            tickers = [params["market_ticker"]]
        if tickers is None:
            return None
        known = []
        for ticker in tickers:
            if isinstance(self.host.world.by_key.get(ticker), KalshiMarket):
                known.append(ticker)
            else:
                client.conn.send(
                    {
                        "id": cid,
                        "type": "error",
                        "msg": {"code": 16, "msg": "Market not found", "market_ticker": ticker},
                    },
                    "error",
                )
        return known

    def _subscribe(self, client: KalshiConnection, cid: object, params: dict[str, Any]) -> None:
        channels = params.get("channels")
        if not isinstance(channels, list) or not channels:
            self._error(client, cid, 2, "Params required")
            return
        tickers = self._tickers(client, cid, params)
        for channel in channels:
            if channel not in KALSHI_CHANNELS:
                self._error(client, cid, 8, "Unknown channel name")
                continue
            if channel == "orderbook_delta" and tickers is None:
                self._error(client, cid, 2, "Params required")
                continue
            existing = next(
                (s for s in client.subscriptions.values() if s.channel == channel), None
            )
            if existing is not None:
                # A repeat subscribe is acknowledged and consumes a seq, without a snapshot.
                if existing.tickers is not None and tickers:
                    existing.tickers.update(tickers)
                client.conn.send(
                    {
                        "id": cid,
                        "sid": existing.sid,
                        "seq": existing.next_seq(),
                        "type": "ok",
                        "msg": {"market_tickers": sorted(existing.tickers or [])},
                    },
                    "ok",
                )
                continue
            sub = Subscription(client.next_sid, channel, None if tickers is None else set(tickers))
            client.next_sid += 1
            client.subscriptions[sub.sid] = sub
            client.conn.send(
                {"id": cid, "type": "subscribed", "msg": {"channel": channel, "sid": sub.sid}},
                "subscribed",
            )
            self._initial(client, sub, tickers or [], params)

    def _initial(
        self,
        client: KalshiConnection,
        sub: Subscription,
        tickers: list[str],
        params: dict[str, Any],
    ) -> None:
        world = self.host.world
        for ticker in tickers:
            market = world.by_key[ticker]
            assert isinstance(market, KalshiMarket)
            if sub.channel == "orderbook_delta":
                client.conn.send(self._snapshot(market, sub), "orderbook_snapshot")
            elif sub.channel == "ticker" and params.get("send_initial_snapshot"):
                client.conn.send(self._ticker(market, sub, world.step), "ticker")

    def _update(self, client: KalshiConnection, cid: object, params: dict[str, Any]) -> None:
        sids = params.get("sids") or ([params["sid"]] if "sid" in params else [])
        action = params.get("action")
        sub = client.subscriptions.get(sids[0]) if sids else None
        if sub is None or action not in ("add_markets", "delete_markets"):
            self._error(client, cid, 2, "Params required")
            return
        tickers = self._tickers(client, cid, params) or []
        if sub.tickers is None:
            sub.tickers = set()
        if action == "add_markets":
            fresh = [t for t in tickers if t not in sub.tickers]
            sub.tickers.update(tickers)
        else:
            fresh = []
            sub.tickers.difference_update(tickers)
        client.conn.send(
            {
                "id": cid,
                "sid": sub.sid,
                "seq": sub.next_seq(),
                "type": "ok",
                "msg": {"market_tickers": sorted(sub.tickers)},
            },
            "ok",
        )
        self._initial(client, sub, fresh, params)

    def _snapshot(self, market: KalshiMarket, sub: Subscription) -> dict[str, Any]:
        bids, asks = market.yes_book()
        msg: dict[str, Any] = {"market_ticker": market.ticker, "market_id": market.market_uuid}
        if bids:
            msg["yes_dollars_fp"] = [[dollars(p), fp(s)] for p, s in reversed(bids)]
        if asks:
            msg["no_dollars_fp"] = [[dollars(MILLI - p), fp(s)] for p, s in reversed(asks)]
        return {"type": "orderbook_snapshot", "sid": sub.sid, "seq": sub.next_seq(), "msg": msg}

    def _ticker(self, market: KalshiMarket, sub: Subscription, seconds: float) -> dict[str, Any]:
        moment = self.host.world.time_of(seconds)
        bids, asks = market.yes_book()
        last_size = market.trades[-1].size if market.trades else 0.0
        return {
            "type": "ticker",
            "sid": sub.sid,
            "msg": {
                "market_ticker": market.ticker,
                "market_id": market.market_uuid,
                "price_dollars": dollars(market.last_m or 0),
                "yes_bid_dollars": dollars(bids[0][0] if bids else 0),
                "yes_ask_dollars": dollars(asks[0][0] if asks else MILLI),
                "volume_fp": fp(market.volume),
                "open_interest_fp": fp(market.open_interest),
                "dollar_volume": round(market.volume * (market.last_m or 0) / MILLI),
                "dollar_open_interest": round(market.open_interest * (market.last_m or 0) / MILLI),
                "yes_bid_size_fp": fp(bids[0][1] if bids else 0.0),
                "yes_ask_size_fp": fp(asks[0][1] if asks else 0.0),
                "last_trade_size_fp": fp(last_size),
                "ts": int(moment.timestamp()),
                "ts_ms": ms(moment),
                "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    def publish(self, changes: list[Change], now: float) -> None:
        if not self.clients:
            return
        silent = self.host.faults.silent("kalshi", now)
        world = self.host.world
        for client in list(self.clients):
            for change in changes:
                market = change.market
                if not isinstance(market, KalshiMarket) or change.status_changed:
                    continue
                for sub in client.subscriptions.values():
                    if not sub.covers(market.ticker):
                        continue
                    frames: list[tuple[dict[str, Any], str]] = []
                    if sub.channel == "orderbook_delta":
                        frames = [(f, "orderbook_delta") for f in self._deltas(change, market, sub)]
                    elif sub.channel == "ticker":
                        frames = [(self._ticker(market, sub, change.seconds), "ticker")]
                    else:
                        moment = world.time_of(change.seconds)
                        frames = [
                            (self._trade(t, market, sub, moment), "trade") for t in change.trades
                        ]
                    if not silent:  # seq still advances: a silent gap shows as a seq gap
                        for frame, kind in frames:
                            client.conn.send(frame, kind)

    def _deltas(
        self, change: Change, market: KalshiMarket, sub: Subscription
    ) -> list[dict[str, Any]]:
        moment = self.host.world.time_of(change.seconds)
        old_bids, old_asks = market.yes_book(change.before)
        new_bids, new_asks = market.yes_book(change.after)
        frames = []
        for side, old, new in (
            ("yes", old_bids, new_bids),
            ("no", _mirror(old_asks), _mirror(new_asks)),
        ):
            for price, before, after in level_diff(old, new):
                frames.append(
                    {
                        "type": "orderbook_delta",
                        "sid": sub.sid,
                        "seq": sub.next_seq(),
                        "msg": {
                            "market_ticker": market.ticker,
                            "market_id": market.market_uuid,
                            "price_dollars": dollars(price),
                            "delta_fp": fp(after - before),
                            "side": side,
                            "ts": iso(moment),
                            "ts_ms": ms(moment),
                        },
                    }
                )
        return frames

    def _trade(
        self, trade: Any, market: KalshiMarket, sub: Subscription, moment: Any
    ) -> dict[str, Any]:
        side = "yes" if trade.buy else "no"
        return {
            "type": "trade",
            "sid": sub.sid,
            "seq": sub.next_seq(),
            "msg": {
                "trade_id": trade.trade_id,
                "market_ticker": market.ticker,
                "yes_price_dollars": dollars(trade.price_m),
                "no_price_dollars": dollars(MILLI - trade.price_m),
                "count_fp": fp(trade.size),
                "taker_side": side,
                "taker_outcome_side": side,
                "taker_book_side": "bid" if trade.buy else "ask",
                "is_block_trade": False,
                "ts": int(moment.timestamp()),
                "ts_ms": ms(moment),
            },
        }

    def drop_all(self) -> int:
        for client in list(self.clients):
            client.conn.drop(1012, "simulated drop")
        return len(self.clients)
