"""Polymarket's market channel: frames parsed into the right top of book (recordings), and the
streamer against the simulator's websocket and a real database: updates reach `snapshots`,
abrupt disconnects lose nothing after the REST re-snapshot, the watchdog restarts a silent
connection, shards stay within their size, and REST takes over while a stream is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from exporter.errors import ParseError
from exporter.ingest.polymarket import PolymarketIngest
from exporter.ingest.polymarket_stream import PolymarketStreamer
from exporter.ingest.streams import StreamCollector
from exporter.metrics import build_registry
from exporter.normalize.polymarket import parse_book
from exporter.normalize.polymarket_stream import Books, parse_frame
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.polymarket import clob_book
from exporter.venues.stream import stop_pinging
from tests.support.databases import Database
from tests.support.ingest import polymarket_ingest, polymarket_settings
from tests.support.running import Exporter, fast_delays, key, until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "venues" / "polymarket"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _lines(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text().splitlines() if line.strip()]


def test_every_recorded_frame_parses_and_books_follow_snapshots_and_deltas() -> None:
    books = Books()
    kinds: set[str] = set()
    for name in ("ws_market_real_messages.jsonl", "ws_market_docs_examples.jsonl"):
        for line in _lines(name):
            parsed = parse_frame(line)
            assert isinstance(parsed, list)
            for message in parsed:
                kind, _ = books.apply(message)
                kinds.add(kind)
    assert {"book", "price_change", "tick_size_change", "last_trade_price"} <= kinds
    # The real book: best bid is the highest bid, best ask the lowest ask, wherever they sit.
    real = json.loads(_lines("ws_market_real_messages.jsonl")[0])
    fresh = Books()
    fresh.apply(real)
    top = fresh.tops[real["asset_id"]]
    assert top.bid == max(float(b["price"]) for b in real["bids"])
    assert top.ask == min(float(a["price"]) for a in real["asks"])
    assert parse_frame("PONG") == "PONG"
    assert parse_frame("NO NEW ASSETS") == "NO NEW ASSETS"


ASSET = "123"


def _book(bid: str, ask: str, last: str = "") -> dict[str, Any]:
    return {"event_type": "book", "asset_id": ASSET, "market": "0x1",
            "bids": [{"price": "0.10", "size": "5"}, {"price": bid, "size": "9"}],
            "asks": [{"price": "0.90", "size": "5"}, {"price": ask, "size": "9"}],
            "last_trade_price": last, "timestamp": "1786604072222"}  # fmt: skip


def test_deltas_move_the_top_of_book_and_a_tick_size_change_drops_it() -> None:
    books = Books()
    assert books.apply(_book("0.40", "0.42")) == ("book", {ASSET})
    snap = books.snapshot(ASSET, NOW)
    assert snap is not None
    assert (snap.bid, snap.ask, snap.price) == (0.40, 0.42, pytest.approx(0.41))
    frame = json.dumps([{"event_type": "price_change", "market": "0x1", "timestamp": "1",
                         "price_changes": [{"asset_id": ASSET, "price": "0.43", "size": "0",
                                            "side": "SELL", "best_bid": "0.41",
                                            "best_ask": "0.44"}]},
                        {"event_type": "last_trade_price", "asset_id": ASSET,
                         "price": "0.44", "size": "3", "side": "BUY", "market": "0x1",
                         "timestamp": "2"}])  # fmt: skip
    parsed = parse_frame(frame)
    assert isinstance(parsed, list)
    assert [books.apply(m)[0] for m in parsed] == ["price_change", "last_trade_price"]
    snap = books.snapshot(ASSET, NOW)
    assert snap is not None
    assert (snap.bid, snap.ask, snap.last_trade) == (0.41, 0.44, 0.44)
    # An empty side is reported as a best bid of 0 / best ask of 1.
    books.apply({"event_type": "price_change", "market": "0x1", "timestamp": "3",
                 "price_changes": [{"asset_id": ASSET, "price": "0.41", "size": "0",
                                    "side": "BUY", "best_bid": "0",
                                    "best_ask": "0.44"}]})  # fmt: skip
    snap = books.snapshot(ASSET, NOW)
    assert snap is not None
    assert snap.bid is None
    assert snap.price == 0.44  # one-sided: the last trade
    books.apply({"event_type": "tick_size_change", "asset_id": ASSET, "market": "0x1",
                 "old_tick_size": "0.01", "new_tick_size": "0.001", "timestamp": "4"})  # fmt: skip
    assert books.snapshot(ASSET, NOW) is None
    books.apply({"event_type": "price_change", "market": "0x1", "timestamp": "5",
                 "price_changes": [{"asset_id": ASSET, "price": "0.5", "size": "1",
                                    "side": "BUY", "best_bid": "0.5",
                                    "best_ask": "0.6"}]})  # fmt: skip
    assert books.snapshot(ASSET, NOW) is None  # still waiting for a book
    books.apply(_book("0.45", "0.46"))
    snap = books.snapshot(ASSET, NOW)
    assert snap is not None
    assert snap.bid == 0.45


@pytest.mark.parametrize(
    ("text", "why"),
    [("{not json", "not valid JSON"), ("[1, 2]", "Expected `object`"), ("[1, 2", "JSON"),
     ('{"event_type": "book", "asset_id": "0xnot-digits"}', "asset_id"),
     ('{"event_type": "price_change", "price_changes": [{"asset_id": "1", "side": "BUY",'
      ' "price": "0.5", "size": "1", "best_bid": "2"}]}', "best_bid"),
     ('{"event_type": "price_change", "price_changes": [{"asset_id": "1", "side": "BUY",'
      ' "price": "0.5", "size": "-1"}]}', "size"), ('{"market": "0x1"}', "event_type")],
)  # fmt: skip
def test_malformed_frames_are_parse_errors_naming_the_problem(text: str, why: str) -> None:
    books = Books()

    def consume() -> None:
        parsed = parse_frame(text)
        assert isinstance(parsed, list)
        for message in parsed:
            books.apply(message)

    with pytest.raises(ParseError, match=why):
        consume()


# --- against the simulator ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _streaming(
    db: Database, sim: Simulator, **stream: Any
) -> AsyncIterator[tuple[PolymarketIngest, PolymarketStreamer]]:
    settings = polymarket_settings(db, sim, hot_size=40, stream={"coalesce": "200ms", **stream})
    async with polymarket_ingest(settings) as ingest:
        await ingest.discover()
        streamer = PolymarketStreamer(
            settings.venues.polymarket, ingest.hot, ingest.client, ingest.writer, ingest.rejects,
            reconnect_delays=fast_delays(),
        )  # fmt: skip
        task = asyncio.create_task(streamer.run())
        try:
            await until(lambda: streamer.live() and len(streamer.live()) == len(streamer.wanted()),
                         10, "every hot asset streamed")  # fmt: skip
            yield ingest, streamer
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _expected(sim: Simulator, assets: list[str]) -> dict[str, tuple[float | None, float | None]]:
    """Each asset's top of book as the simulator's world has it now."""
    world = sim.world
    out = {}
    for asset in assets:
        market, token = world.by_token[asset]
        if not market.trading:
            continue
        snap = parse_book(clob_book(market, token, world, world.step), NOW)
        if snap is not None:
            out[asset] = (snap.bid, snap.ask)
    return out


def _stored(db: Database) -> dict[str, tuple[float | None, float | None]]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (outcome_id) outcome_id, bid, ask FROM snapshots"
            " ORDER BY outcome_id, time DESC"
        ).fetchall()
    return {r[0].split(":", 1)[1]: (r[1], r[2]) for r in rows}


def _agree(db: Database, sim: Simulator, assets: list[str]) -> list[str]:
    expected, stored = _expected(sim, assets), _stored(db)
    return [a for a, quote in expected.items() if stored.get(a) != pytest.approx(quote)]


async def test_streamed_updates_reach_snapshots_and_ten_drops_lose_nothing(pg: Database) -> None:
    timeline = [{"at": f"{12 * i + 45}s", "drop_websockets": {"venue": "polymarket"}}
                for i in range(10)]  # fmt: skip
    scenario = load_scenario({"seed": 8, "universe": {"polymarket": 30, "kalshi": 0},
                              "timeline": timeline})  # fmt: skip
    async with (
        Simulator(scenario, clock=ManualClock(START)) as sim,
        _streaming(pg, sim) as (ingest, streamer),
    ):
        assets = streamer.wanted()
        assert len(assets) == 2 * len(ingest.hot.known)
        await until(lambda: not _agree(pg, sim, assets), 10, "first books stored")
        # Moves on the stream alone (the REST hot poll is not running here).
        for _ in range(20):
            sim.advance(2)
            await asyncio.sleep(0.05)
        await until(lambda: not _agree(pg, sim, assets), 5, "streamed moves stored")
        streamed_rows = streamer.rows.rows_written
        assert streamer.messages["price_change"] > 0
        # Ten abrupt disconnects, each followed by moves nobody streamed.
        for _ in range(10):
            sim.advance(10)  # crosses a drop_websockets: the moves after it are unseen
            await until(lambda: streamer.live() == set(assets), 10, "reconnected")
            sim.advance(2)
            await asyncio.sleep(0.1)
        await until(lambda: not _agree(pg, sim, assets), 10, "every price after drops")
        assert streamer.counts["gaps"] >= 10
        assert sum(c.events["reconnects"] for c in streamer.channels) >= 10
        assert streamer.rows.rows_written > streamed_rows
        latency = build_registry([StreamCollector([streamer])]).get_sample_value(
            "movers_stream_commit_latency_seconds_count", {"venue": "polymarket"}
        )
        assert latency

        with pg.connect() as conn:  # streamed rows carry their market's 24 h volume too
            (missing,) = conn.execute(
                "SELECT count(*) FROM snapshots WHERE volume_24h IS NULL"
            ).fetchone() or (0,)
        assert missing == 0
        assert ingest.rejects.counts == {} or sum(ingest.rejects.counts.values()) == 0


async def test_a_connection_cancelled_while_it_stops_pinging_stays_cancelled() -> None:
    """A connection closing (a watchdog restart) waits for its pinger to stop; cancelled right
    then, it must end, not swallow the cancellation with the pinger's and reconnect."""
    stopping = asyncio.Event()

    async def pinger() -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            stopping.set()
            await asyncio.sleep(0.2)
            raise

    async def closing() -> str:
        pinging = asyncio.create_task(pinger())
        await asyncio.sleep(0)  # pinging
        await stop_pinging(pinging)
        return "reconnects"

    task = asyncio.create_task(closing())
    await asyncio.wait_for(stopping.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_watchdog_restarts_a_silent_connection(pg: Database) -> None:
    timeline = [{"at": "5s", "for": "1h", "silence": {"venue": "polymarket"}}]
    scenario = load_scenario({"seed": 9, "universe": {"polymarket": 10, "kalshi": 0},
                              "timeline": timeline})  # fmt: skip
    async with (
        Simulator(scenario, clock=ManualClock(START)) as sim,
        _streaming(pg, sim, silence="1s") as (_, streamer),
    ):
        sim.advance(6)  # silent from now on (PONGs still come: they do not count)

        async def ticking() -> None:
            while True:
                sim.advance(1)
                await asyncio.sleep(0.1)

        ticker = asyncio.create_task(ticking())
        try:
            await until(
                lambda: sum(c.events["watchdog_restarts"] for c in streamer.channels) >= 1,
                10, "a watchdog restart",
            )  # fmt: skip
        finally:
            ticker.cancel()
        await until(lambda: streamer.live() == set(streamer.wanted()), 10, "back up")


async def test_shards_stay_within_their_size_and_follow_the_hot_set(pg: Database) -> None:
    scenario = load_scenario({"seed": 10, "universe": {"polymarket": 30, "kalshi": 0}})
    async with (
        Simulator(scenario, clock=ManualClock(START)) as sim,
        _streaming(pg, sim, per_connection=25) as (ingest, streamer),
    ):
        wanted = streamer.wanted()
        assert len(wanted) > 25
        assert len(streamer.channels) == -(-len(wanted) // 25)
        assert all(len(c.assets) <= 25 for c in streamer.channels)
        served = [client.assets for client in sim.polymarket_stream.clients]
        assert all(len(s) <= 25 for s in served)
        assert set().union(*served) == set(wanted)
        # The hot set shrinks: the subscription follows in place.
        ingest.hot.choose(ingest.hot.known, ingest.hot.markets[:5])
        await streamer.reshard()
        await until(
            lambda: set().union(*(c.assets for c in sim.polymarket_stream.clients))
            == set(streamer.wanted()),
            5, "unsubscribed on the venue",
        )  # fmt: skip
        assert len(streamer.wanted()) == 10


async def test_rest_polls_the_hot_set_while_its_stream_is_down(pg: Database) -> None:
    scenario = load_scenario({"seed": 11, "universe": {"polymarket": 10, "kalshi": 0}})
    async with (
        Simulator(scenario, clock=ManualClock(START)) as sim,
        _streaming(pg, sim) as (ingest, streamer),
    ):
        await ingest.refresh_hot()
        assert ingest.last_hot_tokens == 0  # all streamed
        for channel in streamer.channels:
            channel.connection.connected = False  # as while a connection is down
        await ingest.refresh_hot()
        assert ingest.last_hot_tokens == len(streamer.wanted())


async def test_a_jump_streams_into_snapshots_movers_and_metrics(
    pg: Database, tmp_path: Path
) -> None:
    """`movers run` with every Polymarket poll an hour apart: only the stream can bring the jump."""
    base = {"seed": 21, "universe": {"polymarket": 30, "kalshi": 0}}
    timeline = [{"at": "30s", "jump": {"venue": "polymarket", "market": 3, "from": 0.30,
                                       "to": 0.42}}]  # fmt: skip
    scenario = load_scenario({**base, "timeline": timeline})
    async with Simulator(scenario, clock=ManualClock(START)) as sim:
        assert sim.urls is not None
        venues = sim.urls.venues()
        venues["polymarket"] |= {"hot_every": 3600, "tail_every": 3600, "trades_every": 3600}
        venues["kalshi"] = {"enabled": False}
        market = f"polymarket:{sim.world.poly_markets[3].condition_id}"
        exporter = Exporter(pg.url, {
            "venues": venues,
            "movers": {"windows": ["10s"], "every": "1s",
                       "filters": {"polymarket": {"min_volume_24h": 0, "max_spread": None}}},
        }, tmp_path)  # fmt: skip
        await exporter.start()
        try:
            await exporter.wait_for(
                lambda s: s.get(key("movers_price_source_outcomes", venue="polymarket",
                                    source="stream"), 0) > 0
                and bool(s.get(key("movers_job_runs_total", job_name="movers_refresh",
                                   outcome="ok"))),
                60, "the hot set streamed and a movers refresh",
            )  # fmt: skip
            await asyncio.sleep(10.5)  # the prices before the jump are older than the window
            sim.advance(31)
            samples = await exporter.wait_for(
                lambda s: any(
                    n == "movers_market_move_ratio" and dict(labels)["market_id"] == market
                    for n, labels in s
                ),
                10, "the streamed jump exported as a mover",
            )  # fmt: skip
            (move,) = [
                v
                for (n, labels), v in samples.items()
                if n == "movers_market_move_ratio" and dict(labels)["market_id"] == market
            ]
            assert move == pytest.approx(0.12, abs=0.011)
            assert samples[key("movers_websocket_subscribed_assets", venue="polymarket")] > 0
            assert samples[key("movers_stream_commit_latency_seconds_count", venue="polymarket")]
        finally:
            code, err, _ = await exporter.stop()
        assert code == 0, err[-3000:]


async def test_a_replaying_server_that_drops_on_purpose_is_read_and_reconnected() -> None:
    """A local websockets server replays the recorded frames, then closes the connection
    abruptly; the channel reads every frame, answers nothing but PINGs, and reconnects (the
    REST re-snapshot hook runs each time)."""
    from websockets.asyncio.server import ServerConnection, serve

    from exporter.venues.polymarket.stream import MarketChannel

    recorded = _lines("ws_market_real_messages.jsonl")
    subscriptions: list[dict[str, Any]] = []

    async def replay(ws: ServerConnection) -> None:
        subscriptions.append(json.loads(await ws.recv()))
        for line in recorded:
            await ws.send(line)
        await ws.send("PONG")
        await asyncio.sleep(0.05)
        ws.transport.abort()  # abrupt: no close frame

    frames: list[str] = []
    connects: list[bool] = []

    async def on_connect(assets: set[str], first: bool) -> None:
        connects.append(first)

    async with serve(replay, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        channel = MarketChannel(
            f"ws://127.0.0.1:{port}", 0, lambda text, _: frames.append(text), on_connect,
            silence=5, reconnect_delays=fast_delays(),
        )  # fmt: skip
        channel.assets = {"1", "2"}
        task = asyncio.create_task(channel.run())
        try:
            await until(lambda: len(connects) >= 3, 10, "three connections")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert connects[:3] == [True, False, False]
    assert frames[: len(recorded)] == recorded  # PONG is not market data
    assert subscriptions[0] == {"assets_ids": ["1", "2"], "type": "market"}
    assert channel.events["reconnects"] >= 2
    books = Books()
    for frame in frames[: len(recorded)]:
        parsed = parse_frame(frame)
        assert isinstance(parsed, list)
        for message in parsed:
            books.apply(message)
    assert books.tops


async def test_the_end_of_a_silence_is_not_lost_and_rest_covers_it(pg: Database) -> None:
    """The market channel goes quiet for longer than the watchdog (restarts re-read the books
    each time) and prices keep moving to its very end; when data resumes, the channel's assets
    are read again over REST, so the last moves of the silence are stored too. While quiet,
    the assets are not live: the hot REST job covers them, and each outcome is counted under
    one source only."""
    timeline = [{"at": "5s", "for": "40s", "silence": {"venue": "polymarket"}}]
    scenario = load_scenario({"seed": 12, "universe": {"polymarket": 15, "kalshi": 0},
                              "timeline": timeline})  # fmt: skip
    async with (
        Simulator(scenario, clock=ManualClock(START)) as sim,
        _streaming(pg, sim, silence="4s") as (ingest, streamer),
    ):
        assets = streamer.wanted()
        await until(lambda: not _agree(pg, sim, assets), 10, "first books stored")
        sim.advance(6)  # quiet from here; prices go on moving
        await until(lambda: not streamer.live(), 5, "quiet assets left to REST")
        assert streamer.rest_polled() == len(assets)
        for _ in range(40):  # the rest of the silence, moving to its last second
            sim.advance(1)
            await asyncio.sleep(0.05)
        sim.advance(1)  # past the silence: data flows again
        await until(lambda: streamer.live() == set(assets), 10, "data again")
        await until(lambda: not _agree(pg, sim, assets), 10, "every price of the silence")
        assert sum(c.events["resumes"] for c in streamer.channels) >= 1
        print(f"drill: silence: {len(assets)} assets, every price of the silence stored,"
              f" {sum(c.events['watchdog_restarts'] for c in streamer.channels)} watchdog"
              " restarts")  # fmt: skip
        assert len(streamer.live()) + streamer.rest_polled() == len(assets)
        assert ingest.rejects.counts == {} or sum(ingest.rejects.counts.values()) == 0


@pytest.mark.parametrize(("status", "retried"), [(429, True), (404, True), (403, False)])
async def test_a_refused_handshake_is_retried_unless_the_credentials_are_refused(
    status: int, retried: bool
) -> None:
    """A handshake answered 429 or 404 (a proxy, a deploy) is tried again with backoff; it used
    to end the connection's task for good (websockets' default policy retries only 5xx). A 401
    or 403 stops: trying again cannot help, and REST polls the assets."""
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request, Response

    from exporter.venues.polymarket.stream import MarketChannel

    attempts: list[int] = []

    def refuse_first(conn: ServerConnection, request: Request) -> Response | None:
        attempts.append(1)
        return conn.respond(status, "no") if len(attempts) == 1 else None

    async def hold(ws: ServerConnection) -> None:
        await ws.recv()
        await asyncio.sleep(5)

    connects: list[bool] = []

    async def on_connect(assets: set[str], first: bool) -> None:
        connects.append(first)

    async with serve(hold, "127.0.0.1", 0, process_request=refuse_first) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        channel = MarketChannel(
            f"ws://127.0.0.1:{port}", 0, lambda text, _: None, on_connect,
            silence=5, reconnect_delays=fast_delays(),
        )  # fmt: skip
        task = asyncio.create_task(channel.run())
        try:
            if retried:
                await until(lambda: channel.connected, 5, "connected after the refusal")
            else:
                await asyncio.wait_for(task, 5)  # the runner ends by itself
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert channel.events["refused"] == 1
    assert connects == ([True] if retried else [])
