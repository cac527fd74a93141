"""The simulator's behaviour: pagination, determinism, scenarios, websocket consistency, CLI."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from exporter.config.pairs import load_pairs
from exporter.errors import ConfigError
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.world import KalshiMarket, PolyMarket, World
from tests.support.venues import recorded_lines, shape_problems

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def _sim(data: dict[str, Any] | None = None, **kwargs: Any) -> Simulator:
    scenario = load_scenario(
        {"seed": 5, "universe": {"polymarket": 150, "kalshi": 250}} | (data or {})
    )
    return Simulator(scenario, clock=ManualClock(START), **kwargs)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with _sim() as simulator:
        yield simulator


async def _json(client: httpx.AsyncClient, url: str, **params: Any) -> Any:
    response = await client.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- pagination ---------------------------------------------------------------------------------


async def test_gamma_keyset_walks_every_open_market_exactly_once(sim: Simulator) -> None:
    assert sim.urls is not None
    seen: list[str] = []
    pages = 0
    async with httpx.AsyncClient() as client:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 7, "closed": "false"}
            if cursor:
                params["after_cursor"] = cursor
            page = await _json(client, f"{sim.urls.gamma}/events/keyset", **params)
            seen += [m["conditionId"] for e in page["events"] for m in e["markets"]]
            pages += 1
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        markets: list[str] = []
        cursor = None
        while True:
            params = {"limit": 100} | ({"after_cursor": cursor} if cursor else {})
            page = await _json(client, f"{sim.urls.gamma}/markets/keyset", **params)
            markets += [m["conditionId"] for m in page["markets"]]
            cursor = page.get("next_cursor")
            if cursor is None:
                break
    open_events = [e for e in sim.world.poly_events if not e.closed]
    assert pages == -(-len(open_events) // 7)
    assert sorted(seen) == sorted(m.key for e in open_events for m in e.markets)
    assert sorted(markets) == sorted(m.key for m in sim.world.open_markets("polymarket"))
    assert len(markets) == len(set(markets))


async def test_gamma_offset_paging_limits(sim: Simulator) -> None:
    assert sim.urls is not None
    async with httpx.AsyncClient() as client:
        capped = await _json(client, f"{sim.urls.gamma}/markets", limit=500)
        deep = await client.get(f"{sim.urls.gamma}/markets", params={"offset": 2001})
        keyset_offset = await client.get(f"{sim.urls.gamma}/markets/keyset", params={"offset": 0})
    assert len(capped) == 100
    assert (deep.status_code, deep.json()) == (
        400,
        {"error": "offset too large, use /markets/keyset"},
    )
    assert keyset_offset.status_code == 422
    assert keyset_offset.json()["error"] == "offset is not allowed on keyset endpoints"


async def test_kalshi_cursor_walks_the_whole_universe_once(sim: Simulator) -> None:
    assert sim.urls is not None
    tickers: list[str] = []
    async with httpx.AsyncClient() as client:
        cursor = ""
        while True:
            page = await _json(client, f"{sim.urls.kalshi_rest}/markets", limit=40, cursor=cursor)
            tickers += [m["ticker"] for m in page["markets"]]
            cursor = page["cursor"]
            if not cursor:
                break
        open_only = await _json(
            client,
            f"{sim.urls.kalshi_rest}/markets",
            limit=1000,
            status="open",
            mve_filter="exclude",
        )
        too_big = await client.get(f"{sim.urls.kalshi_rest}/markets", params={"limit": 1001})
    assert sorted(tickers) == sorted(m.key for m in sim.world.kalshi_markets)
    assert len(tickers) == len(set(tickers))
    # Filter names differ from the status names markets carry.
    assert {m["status"] for m in open_only["markets"]} == {"active"}
    assert not any(m.get("mve_collection_ticker") for m in open_only["markets"])
    assert too_big.status_code == 400


async def test_kalshi_close_time_bounds_split_the_listing_without_gap_or_overlap(
    sim: Simulator,
) -> None:
    """``min_close_ts``/``max_close_ts`` (inclusive): three slices of the open listing hold every
    open market once, each closing within its bounds."""
    assert sim.urls is not None
    url = f"{sim.urls.kalshi_rest}/markets"
    base = {"limit": 1000, "status": "open", "mve_filter": "exclude"}
    async with httpx.AsyncClient() as client:
        everything = [m["ticker"] for m in (await _json(client, url, **base))["markets"]]
        closes = sorted(m.end.timestamp() for m in sim.world.kalshi_markets)
        cut = [int(closes[len(closes) // 3]), int(closes[2 * len(closes) // 3])]
        slices = [
            await _json(client, url, **base, max_close_ts=cut[0]),
            await _json(client, url, **base, min_close_ts=cut[0] + 1, max_close_ts=cut[1]),
            await _json(client, url, **base, min_close_ts=cut[1] + 1),
        ]
        bad = await client.get(url, params={"min_close_ts": "soon"})
    found = [m["ticker"] for part in slices for m in part["markets"]]
    assert sorted(found) == sorted(everything)
    assert all(len(part["markets"]) for part in slices)
    closing = {m.key: int(m.end.timestamp()) for m in sim.world.kalshi_markets}
    assert all(closing[m["ticker"]] <= cut[0] for m in slices[0]["markets"])
    assert all(closing[m["ticker"]] > cut[1] for m in slices[2]["markets"])
    assert bad.status_code == 400


# --- determinism --------------------------------------------------------------------------------


async def _snapshot_of(seed: int) -> tuple[bytes, bytes]:
    async with _sim({"seed": seed}) as sim, httpx.AsyncClient() as client:
        assert sim.urls is not None
        sim.advance(300)
        markets = await client.get(f"{sim.urls.kalshi_rest}/markets", params={"limit": 1000})
        trades = await client.get(f"{sim.urls.data}/trades", params={"limit": 1000})
        return markets.content, trades.content


async def test_the_same_seed_serves_the_same_bytes() -> None:
    first, second, other = await _snapshot_of(5), await _snapshot_of(5), await _snapshot_of(6)
    assert first == second
    assert first[0] != other[0]
    assert first[1] != other[1]
    assert len(orjson.loads(first[1])) > 10


async def test_the_world_is_the_same_however_often_it_is_observed() -> None:
    async with _sim() as stepwise, _sim() as at_once:
        for _ in range(60):
            stepwise.advance(5)
        at_once.advance(300)
        quotes = [(m.bid_m, m.ask_m, m.last_m) for m in stepwise.world.kalshi_markets]
        assert quotes == [(m.bid_m, m.ask_m, m.last_m) for m in at_once.world.kalshi_markets]


async def test_prices_stay_on_the_tick_grid_with_bid_below_ask(sim: Simulator) -> None:
    sim.advance(3600)
    moved = 0
    for market in sim.world.poly_markets + sim.world.kalshi_markets:  # type: ignore[operator]
        assert market.bid_m % market.tick_m == 0
        assert market.ask_m % market.tick_m == 0
        assert 0 < market.bid_m < market.ask_m < 1000
        moved += market.history[-1][0] > 0
    total = len(sim.world.poly_markets) + len(sim.world.kalshi_markets)
    # Most markets idle in any given minute, but over an hour most have moved.
    assert total * 0.5 < moved < total


# --- scenarios ----------------------------------------------------------------------------------


async def test_a_scenario_plays_out_as_scripted() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    timeline = [
        {"at": "30s", "jump": {"venue": "polymarket", "market": 3, "from": 0.42, "to": 0.61}},
        {"at": "60s", "for": "20s", "rate_limit": {"venue": "kalshi"}},
        {"at": "90s", "drop_websockets": {"venue": "all"}},
        {"malformed": {"venue": "polymarket", "endpoint": "gamma /events/keyset", "page": 2}},
        {"at": "10s", "for": "10s", "server_error": {"venue": "polymarket",
                                                     "endpoint": "clob /book*", "status": 502}},
        {"truncate": {"venue": "kalshi", "endpoint": "kalshi /series", "times": 1}},
    ]  # fmt: skip
    async with _sim({"timeline": timeline}, kalshi_keys={"k1": public}) as sim:
        assert sim.urls is not None
        market = sim.world.market("polymarket", 3)
        assert isinstance(market, PolyMarket)
        token = market.tokens[0]
        async with httpx.AsyncClient() as client:
            # The jump: held at 0.42 until 30 s, then 0.61 exactly.
            mid = await _json(client, f"{sim.urls.clob}/midpoint", token_id=token)
            assert mid == {"mid": "0.42"}
            sim.advance(15)
            assert (
                await client.get(f"{sim.urls.clob}/book", params={"token_id": token})
            ).status_code == 502
            sim.advance(14)
            assert await _json(client, f"{sim.urls.clob}/midpoint", token_id=token) == {
                "mid": "0.42"
            }
            sim.advance(1)
            assert await _json(client, f"{sim.urls.clob}/midpoint", token_id=token) == {
                "mid": "0.61"
            }
            trades = await _json(client, f"{sim.urls.data}/trades", market=market.key)
            assert trades[0]["timestamp"] == int(START.timestamp()) + 30
            # The 429 window: 60 s to 80 s.
            statuses = []
            for step in (29, 1, 19, 1):
                sim.advance(step)
                statuses.append((await client.get(f"{sim.urls.kalshi_rest}/markets")).status_code)
            assert statuses == [200, 429, 429, 200]
            # The malformed record: only the first market on page 2.
            first = await _json(client, f"{sim.urls.gamma}/events/keyset", limit=5)
            second = await _json(client, f"{sim.urls.gamma}/events/keyset", limit=5,
                                 after_cursor=first["next_cursor"])  # fmt: skip
            assert all(json.loads(m["clobTokenIds"]) for e in first["events"] for m in e["markets"])
            broken = second["events"][0]["markets"][0]
            with pytest.raises(json.JSONDecodeError):
                json.loads(broken["clobTokenIds"])
            assert sim.truth.malformed == [("gamma /events/keyset", broken["conditionId"])]
            # Truncated JSON, once.
            cut = await client.get(f"{sim.urls.kalshi_rest}/series")
            with pytest.raises(json.JSONDecodeError):
                json.loads(cut.content)
            assert (await _json(client, f"{sim.urls.kalshi_rest}/series"))["series"]
        # The websocket drop at 90 s.
        async with (
            websockets.connect(sim.urls.polymarket_ws) as poly,
            websockets.connect(
                sim.urls.kalshi_ws, additional_headers=_signed_headers("k1", key)
            ) as kalshi,
        ):
            await poly.send(json.dumps({"assets_ids": [token], "type": "market"}))
            assert _flatten([json.loads(await poly.recv())])[0]["event_type"] == "book"
            sim.advance(10)
            for socket in (poly, kalshi):
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await _read_until_closed(socket)
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 1012
    actions = [(i.action, i.endpoint) for i in sim.truth.injected]
    assert ("server_error", "clob /book") in actions
    assert ("rate_limit", "kalshi /markets") in actions
    assert ("truncate", "kalshi /series") in actions
    assert ("drop_websockets", "all") in actions
    assert sim.truth.responses[("kalshi /markets", 429)] == 2


def test_scenario_typos_and_ambiguous_entries_name_their_path(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "seed: 1\ntimeline:\n  - at: 5s\n    jumpp: {venue: kalshi, market: 1, to: 0.5}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert next(p for p, _ in info.value.problems) == "timeline.0.jumpp"
    assert "did you mean 'jump'" in info.value.problems[0][1]
    with pytest.raises(ConfigError, match="exactly one action"):
        load_scenario({"timeline": [{"at": 1, "silence": {"venue": "kalshi"},
                                     "rate_limit": {"venue": "kalshi"}}]})  # fmt: skip


def test_the_demo_scenario_loads() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "demo.yaml")
    assert scenario.timeline
    assert scenario.speed >= 1


def test_the_demo_pairs_file_names_the_demo_worlds_twins_and_one_diverges() -> None:
    """scenarios/demo-pairs.yaml (what the demo profile's exporter watches) lists twins of the
    demo world, each oriented as the world made it; the first is 15 pp apart from 3m on."""
    world = World(load_scenario(ROOT / "scenarios" / "demo.yaml"), START)
    twins = {(t.polymarket.slug, t.polymarket.outcomes[0], t.kalshi.key): t for t in world.twins}
    pairs = load_pairs(ROOT / "scenarios" / "demo-pairs.yaml")
    assert len(pairs) >= 5
    for pair in pairs:
        twin = twins[pair.polymarket, pair.outcome, pair.kalshi]
        assert pair.orientation == ("inverse" if twin.inverse else "same"), pair
    first = world.twins[0]
    assert (pairs[0].polymarket, pairs[0].kalshi) == (first.polymarket.slug, first.kalshi.key)
    world.advance_to(4 * 60)
    poly = (first.polymarket.bid_m + first.polymarket.ask_m) / 2000
    kalshi = (first.kalshi.bid_m + first.kalshi.ask_m) / 2000
    spread = poly - (1 - kalshi if first.inverse else kalshi)
    assert abs(spread) >= 0.1, spread


# --- websockets ---------------------------------------------------------------------------------


def _signed_headers(
    key_id: str, key: rsa.RSAPrivateKey, stamp: int | None = None
) -> dict[str, str]:
    ms = str(stamp if stamp is not None else int(time.time() * 1000))
    signature = key.sign(
        f"{ms}GET/trade-api/ws/v2".encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )
    return {
        "KALSHI-ACCESS-KEY": key_id,
        "KALSHI-ACCESS-TIMESTAMP": ms,
        "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode(),
    }


async def _drain(socket: Any, quiet: float = 0.3) -> list[Any]:
    """Every frame until the socket stays quiet for ``quiet`` seconds."""
    frames = []
    try:
        while True:
            text = await asyncio.wait_for(socket.recv(), quiet)
            frames.append(text if text == "PONG" else json.loads(text))
    except TimeoutError:
        return frames


async def _read_until_closed(socket: Any) -> None:
    while True:
        await asyncio.wait_for(socket.recv(), 5)


def _flatten(frames: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for frame in frames:
        if isinstance(frame, list):
            out += frame
        elif isinstance(frame, dict):
            out.append(frame)
    return out


async def test_polymarket_stream_keeps_books_equal_to_rest(sim: Simulator) -> None:
    assert sim.urls is not None
    markets = [m for m in sim.world.open_markets("polymarket")][:25]
    tokens = [t for m in markets for t in m.tokens]  # type: ignore[attr-defined]
    async with websockets.connect(sim.urls.polymarket_ws) as ws:
        await ws.send(json.dumps({"assets_ids": tokens, "type": "market",
                                  "custom_feature_enabled": True}))  # fmt: skip
        books: dict[str, dict[str, dict[str, str]]] = {}
        messages = _flatten(await _drain(ws))
        sim.advance(1800)
        await ws.send("PING")
        frames = await _drain(ws)
        assert "PONG" in frames
        messages += _flatten(frames)
    kinds = {m["event_type"] for m in messages}
    assert {"book", "price_change", "last_trade_price", "best_bid_ask"} <= kinds
    for message in messages:
        if message["event_type"] == "book":
            books[message["asset_id"]] = {
                "BUY": {lv["price"]: lv["size"] for lv in message["bids"]},
                "SELL": {lv["price"]: lv["size"] for lv in message["asks"]},
            }
        elif message["event_type"] == "price_change":
            for change in message["price_changes"]:
                side = books[change["asset_id"]][change["side"]]
                if change["size"] == "0":
                    side.pop(change["price"])
                else:
                    side[change["price"]] = change["size"]
        elif message["event_type"] == "tick_size_change":
            books.pop(message["asset_id"])  # a fresh book follows
    assert set(books) == set(tokens)
    async with httpx.AsyncClient() as client:
        for token, book in books.items():
            rest = await _json(client, f"{sim.urls.clob}/book", token_id=token)
            assert book["BUY"] == {lv["price"]: lv["size"] for lv in rest["bids"]}
            assert book["SELL"] == {lv["price"]: lv["size"] for lv in rest["asks"]}


async def test_polymarket_messages_match_the_recordings(sim: Simulator) -> None:
    assert sim.urls is not None
    tokens = [t for m in sim.world.open_markets("polymarket") for t in m.tokens]  # type: ignore[attr-defined]
    async with websockets.connect(sim.urls.polymarket_ws) as ws:
        await ws.send(json.dumps({"assets_ids": tokens, "type": "market",
                                  "custom_feature_enabled": True}))  # fmt: skip
        await _drain(ws)
        sim.advance(3600)
        messages = _flatten(await _drain(ws, 1.0))
    real = recorded_lines("polymarket/ws_market_real_messages.jsonl")
    docs = recorded_lines("polymarket/ws_market_docs_examples.jsonl")
    expected = {
        "book": [real[0]],
        "price_change": [d for d in docs if d.get("event_type") == "price_change"],
        "last_trade_price": [real[2]],
        "tick_size_change": [real[4]],
        "best_bid_ask": [d for d in docs if d.get("event_type") == "best_bid_ask"],
    }
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        by_kind.setdefault(message["event_type"], []).append(message)
    assert set(expected) <= set(by_kind), set(by_kind)
    for kind, recorded in expected.items():
        assert shape_problems(by_kind[kind], recorded) == [], kind
        assert all(isinstance(m["timestamp"], str) and m["timestamp"].isdigit()
                   for m in by_kind[kind])  # fmt: skip


async def test_polymarket_closes_a_socket_that_stops_pinging() -> None:
    async with _sim({"websocket": {"polymarket_ping_timeout": "0.3s"}}) as sim:
        assert sim.urls is not None
        async with websockets.connect(sim.urls.polymarket_ws) as ws:
            await ws.send(json.dumps({"assets_ids": [], "type": "market"}))
            await asyncio.sleep(0.5)
            sim.advance(60)  # publishing notices the silent client
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)


async def test_kalshi_refuses_a_handshake_without_a_valid_signature() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with _sim(kalshi_keys={"k1": public}) as sim:
        assert sim.urls is not None
        recorded = recorded_lines("kalshi/error_bodies.jsonl")[2]
        for headers in (
            {},
            _signed_headers("k1", other),
            _signed_headers("nobody", key),
            _signed_headers("k1", key, stamp=int(time.time() * 1000) - 120_000),
        ):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(sim.urls.kalshi_ws, additional_headers=headers):
                    pass
            assert refused.value.response.status_code == 401
            assert json.loads(refused.value.response.body or b"") == recorded
        async with websockets.connect(
            sim.urls.kalshi_ws, additional_headers=_signed_headers("k1", key)
        ) as ws:
            await ws.send(
                json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["nope"]}})
            )
            assert json.loads(await ws.recv()) == {
                "id": 1, "type": "error", "msg": {"code": 8, "msg": "Unknown channel name"},
            }  # fmt: skip


async def test_kalshi_stream_books_seq_and_messages() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    async with _sim(kalshi_keys={"k1": public}) as sim:
        assert sim.urls is not None
        tickers = [m.key for m in sim.world.open_markets("kalshi")][:30]
        async with websockets.connect(
            sim.urls.kalshi_ws, additional_headers=_signed_headers("k1", key)
        ) as ws:
            await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {
                "channels": ["orderbook_delta", "ticker", "trade"], "market_tickers": tickers[:20],
            }}))  # fmt: skip
            frames = await _drain(ws)
            sim.advance(900)
            params = {"sids": [1], "market_tickers": tickers[20:], "action": "add_markets"}
            await ws.send(json.dumps({"id": 2, "cmd": "update_subscription", "params": params}))
            frames += await _drain(ws)
            sim.advance(900)
            frames += await _drain(ws, 1.0)
    subscribed = [f for f in frames if f["type"] == "subscribed"]
    assert [f["msg"]["channel"] for f in subscribed] == ["orderbook_delta", "ticker", "trade"]
    # seq: contiguous per sid from 1, acks included; ticker frames carry none.
    seqs: dict[int, list[int]] = {}
    for frame in frames:
        if "seq" in frame:
            seqs.setdefault(frame["sid"], []).append(frame["seq"])
    for sid, numbers in seqs.items():
        assert numbers == list(range(1, len(numbers) + 1)), sid
    assert not any("seq" in f for f in frames if f["type"] == "ticker")
    # Books rebuilt from snapshot + deltas equal the REST books.
    books: dict[str, dict[str, dict[str, float]]] = {}
    for frame in frames:
        msg = frame.get("msg", {})
        if frame["type"] == "orderbook_snapshot":
            books[msg["market_ticker"]] = {
                "yes": {p: float(c) for p, c in msg.get("yes_dollars_fp", [])},
                "no": {p: float(c) for p, c in msg.get("no_dollars_fp", [])},
            }
        elif frame["type"] == "orderbook_delta":
            side = books[msg["market_ticker"]][msg["side"]]
            side[msg["price_dollars"]] = round(
                side.get(msg["price_dollars"], 0.0) + float(msg["delta_fp"]), 2
            )
            if side[msg["price_dollars"]] == 0:
                del side[msg["price_dollars"]]
    assert set(books) == set(tickers)
    for ticker, book in books.items():
        market = sim.world.by_key[ticker]
        assert isinstance(market, KalshiMarket)
        bids, asks = market.yes_book()
        assert book["yes"] == {f"{p / 1000:.4f}": s for p, s in bids}
        assert book["no"] == {f"{(1000 - p) / 1000:.4f}": s for p, s in asks}
    # Message shapes against the recorded frames.
    recorded = [
        {k: v for k, v in f.items() if k != "_rx_ms"}
        for name in ("ws_demo_orderbook_ticker_frames_2026-08-27.jsonl",
                     "ws_prod_tape_lines_2026-09-21.jsonl", "ws_trade_frames_2026.jsonl")
        for f in recorded_lines(f"kalshi/{name}")
    ]  # fmt: skip
    for kind in ("subscribed", "orderbook_snapshot", "orderbook_delta", "ticker", "trade", "ok"):
        served = [f for f in frames if f["type"] == kind]
        assert served, kind
        same_kind = [r for r in recorded if r["type"] == kind]
        assert shape_problems(served, same_kind, optional=KALSHI_WS_OPTIONAL) == [], kind


# Keys some recorded frames lack (empty book sides, older frames): API_NOTES 2.8.
KALSHI_WS_OPTIONAL = frozenset(
    {
        "yes_dollars_fp", "no_dollars_fp", "is_block_trade", "taker_book_side",
        "taker_outcome_side", "dollar_volume", "dollar_open_interest", "time",
    }
)  # fmt: skip


# --- the command --------------------------------------------------------------------------------


def test_movers_sim_prints_its_urls_and_serves_them(tmp_path: Path) -> None:
    key_file = tmp_path / "kalshi.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "sim", "--port", "0", "--polymarket", "20",
         "--kalshi", "20", "--seed", "9", "--kalshi-key-out", str(key_file)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        while not any(line.startswith("movers.yaml") for line in lines):
            line = process.stdout.readline()
            assert line, f"simulator exited: {lines}"
            lines.append(line)
        urls = {line.split()[-2] + " " + line.split()[-1]: line.split()[-1] for line in lines
                if "http://" in line or "ws://" in line}  # fmt: skip
        gamma = next(u for k, u in urls.items() if k.startswith("gamma"))
        kalshi = next(u for k, u in urls.items() if k.startswith("rest"))
        events = httpx.get(f"{gamma}/events", params={"limit": 100}).json()
        assert sum(len(e["markets"]) for e in events) == 20
        assert len(httpx.get(f"{kalshi}/markets").json()["markets"]) == 20
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
    assert code == 0
