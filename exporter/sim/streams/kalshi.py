"""Kalshi's simulated Trade API websocket: signed handshakes, subscriptions by command with
sids and per-subscription ``seq``, ``orderbook_delta``, ``ticker`` and ``trade`` channels.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from exporter.sim.streams.connection import Connection, level_diff, mirror
from exporter.sim.wire import dollars, fp, iso, ms
from exporter.sim.world import MILLI, Change, KalshiMarket

if TYPE_CHECKING:
    from exporter.sim.wire import Host

KALSHI_WS_PATH = "/trade-api/ws/v2"
KALSHI_CHANNELS = ("orderbook_delta", "ticker", "trade")
SIGNATURE_WINDOW_MS = 60_000


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
            ("no", mirror(old_asks), mirror(new_asks)),
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
