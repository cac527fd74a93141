"""Kalshi's websocket: recorded frames parsed into quotes and sequence gaps, and the streamer
against the simulator (which verifies the handshake signature) and a real database: quotes
reach `snapshots`, a sequence gap and a dropped connection are re-snapshotted over REST, a wrong
key is refused, and REST takes over while the stream is down."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.ingest.kalshi import KalshiIngest
from exporter.ingest.kalshi_stream import KalshiStreamer
from exporter.model import displayed_price
from exporter.normalize.kalshi_stream import (
    KalshiFrame,
    Sequences,
    parse_message,
    parse_ticker,
)
from exporter.sim import ManualClock, Simulator, load_scenario
from exporter.sim.world import KalshiMarket
from tests.support.databases import Database
from tests.support.ingest import kalshi_ingest, kalshi_venues
from tests.support.running import fast_delays, until

FIXTURES = Path(__file__).parents[1] / "fixtures" / "venues" / "kalshi"
START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_recorded_frames_parse_into_quotes_and_sequences() -> None:
    tickers = 0
    for path in sorted(FIXTURES.glob("ws_*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip() or '"cmd"' in line:
                continue  # blank, or a command the client sends
            message = parse_message(line)
            if message.type == "ticker":
                tickers += 1
                snapshot = parse_ticker(message, NOW)
                msg = json.loads(bytes(message.msg))
                if snapshot is not None:
                    assert snapshot.outcome_id == f"kalshi:{msg['market_ticker']}"
                    assert snapshot.time == NOW
    assert tickers >= 2
    demo = [
        parse_message(line)
        for line in (FIXTURES / "ws_demo_orderbook_ticker_frames_2026-08-27.jsonl")
        .read_text()
        .splitlines()
        if line.strip()
    ]
    ticker = next(m for m in demo if m.type == "ticker")
    snapshot = parse_ticker(ticker, NOW)
    assert snapshot is not None
    msg = json.loads(bytes(ticker.msg))
    bid = float(msg["yes_bid_dollars"]) if float(msg["yes_bid_size_fp"]) else None
    ask = float(msg["yes_ask_dollars"]) if float(msg["yes_ask_size_fp"]) else None
    last = float(msg["price_dollars"]) or None
    assert (snapshot.bid, snapshot.ask) == (bid, ask)
    assert snapshot.price == displayed_price(bid, ask, last)


def test_a_skipped_seq_is_a_gap_per_subscription() -> None:
    seqs = Sequences()
    assert not seqs.check(KalshiFrame("trade", sid=2, seq=1))
    assert not seqs.check(KalshiFrame("ok", sid=2, seq=2))
    assert not seqs.check(KalshiFrame("trade", sid=3, seq=7))  # another subscription
    assert not seqs.check(KalshiFrame("ticker", sid=2))  # ticker frames carry no seq
    assert seqs.check(KalshiFrame("trade", sid=2, seq=4))
    assert not seqs.check(KalshiFrame("trade", sid=2, seq=5))


def test_a_frame_without_the_body_its_type_needs_is_a_parse_error() -> None:
    from exporter.errors import ParseError

    with pytest.raises(ParseError, match="ticker without msg"):
        parse_ticker(parse_message('{"type": "ticker", "sid": 1}'), NOW)
    with pytest.raises(ParseError, match="yes_bid_dollars"):
        parse_ticker(parse_message('{"type": "ticker", "msg": {"market_ticker": "X",'
                                   ' "yes_bid_dollars": "cheap"}}'), NOW)  # fmt: skip


@pytest.mark.parametrize("text", ["{", "[1]", '{"msg": {}}'])
def test_a_malformed_frame_is_a_parse_error(text: str) -> None:
    from exporter.errors import ParseError

    with pytest.raises(ParseError):
        parse_message(text)


# --- against the simulator ---------------------------------------------------------------------


def _key(folder: Path) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = folder / "kalshi.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return path, public


@contextlib.asynccontextmanager
async def _streaming(
    db: Database, sim: Simulator, key_file: Path, key_id: str = "k1", **stream: Any
) -> AsyncIterator[tuple[KalshiIngest, KalshiStreamer]]:
    venues = kalshi_venues(sim, hot_size=30, api_key_id=key_id, private_key_file=str(key_file),
                     stream={"coalesce": "200ms", "silence": "30s", **stream})  # fmt: skip
    settings = db.settings(venues=venues)
    async with kalshi_ingest(settings) as ingest:
        await ingest.discover()
        kalshi = settings.venues.kalshi
        assert ingest.client.signer is not None
        streamer = KalshiStreamer(
            kalshi.stream, kalshi.ws_url, ingest.hot, ingest.client.signer,
            ingest.refresh_tickers, ingest.writer, ingest.rejects,
            reconnect_delays=fast_delays(),
        )  # fmt: skip
        task = asyncio.create_task(streamer.run())
        try:
            yield ingest, streamer
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _disagree(db: Database, sim: Simulator, tickers: list[str]) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT DISTINCT ON (outcome_id) outcome_id, bid, ask FROM snapshots"
            " ORDER BY outcome_id, time DESC"
        ).fetchall()
    stored = {r[0].split(":", 1)[1]: (r[1], r[2]) for r in rows}
    wrong = []
    for ticker in tickers:
        market = sim.world.by_key[ticker]
        assert isinstance(market, KalshiMarket)
        bids, asks = market.yes_book()
        want = (bids[0][0] / 1000 if bids else None, asks[0][0] / 1000 if asks else None)
        if stored.get(ticker) != pytest.approx(want):
            wrong.append(ticker)
    return wrong


def _scenario(**extra: Any) -> Any:
    return load_scenario({"seed": 12, "universe": {"polymarket": 0, "kalshi": 60}, **extra})


async def test_quotes_stream_in_and_gaps_and_drops_are_re_snapshotted(
    pg: Database, tmp_path: Path
) -> None:
    key_file, public = _key(tmp_path)
    timeline = [{"at": "100s", "for": "20s", "silence": {"venue": "kalshi"}},
                {"at": "200s", "drop_websockets": {"venue": "kalshi"}}]  # fmt: skip
    async with (
        Simulator(_scenario(timeline=timeline), clock=ManualClock(START),
                  kalshi_keys={"k1": public}) as sim,
        _streaming(pg, sim, key_file) as (ingest, streamer),
    ):  # fmt: skip
        await until(lambda: streamer.connected and streamer.sids, 10, "subscribed")
        tickers = streamer.wanted()
        assert tickers
        for _ in range(20):
            sim.advance(3)
            await asyncio.sleep(0.05)
        await until(lambda: not _disagree(pg, sim, tickers), 10, "streamed quotes stored")
        assert streamer.messages["ticker"] > 0
        await until(lambda: streamer.counts["trades_written"] > 0, 10, "streamed trades stored")
        # Silence: Kalshi's seq still advances, so the next message shows the gap.
        sim.advance(50)  # into the silence (at 100 s)
        sim.advance(30)  # out of it; trades after it reveal the skipped numbers
        for _ in range(20):
            sim.advance(2)
            await asyncio.sleep(0.05)
        await until(lambda: streamer.counts["gaps"] >= 1, 10, "a seq gap re-snapshotted")
        await until(lambda: not _disagree(pg, sim, tickers), 10, "quotes after the gap")
        # A dropped connection: a new signed handshake, then a REST re-snapshot.
        gaps = streamer.counts["gaps"]
        _advance_to(sim, 201)
        await until(lambda: streamer.events["reconnects"] >= 1 and streamer.connected, 10,
                     "reconnected")  # fmt: skip
        assert streamer.counts["gaps"] > gaps
        for _ in range(10):
            sim.advance(2)
            await asyncio.sleep(0.05)
        await until(lambda: not _disagree(pg, sim, tickers), 10, "quotes after the drop")
        await ingest.refresh_hot()
        assert ingest.last_hot_tokens == 0  # all streamed: REST leaves them alone
        # Each hot market under one price source: streamed or polled, never both.
        live = streamer.live() & set(ingest.hot.markets)
        assert len(live) + streamer.rest_polled() == len(ingest.hot)


def _advance_to(sim: Simulator, moment: float) -> None:
    now = sim.clock.elapsed()
    if moment > now:
        sim.advance(moment - now)


async def test_a_refused_key_stops_the_stream_and_rest_keeps_polling(
    pg: Database, tmp_path: Path
) -> None:
    key_file, _ = _key(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, other_public = _key(other)
    async with (
        Simulator(_scenario(), clock=ManualClock(START), kalshi_keys={"k1": other_public}) as sim,
        _streaming(pg, sim, key_file) as (ingest, streamer),
    ):
        await until(lambda: streamer.events["refused"] >= 1, 10, "handshake refused")
        await asyncio.sleep(0.5)  # ten reconnect delays of the test's backoff
        assert streamer.events["refused"] == 1  # a refused key is not tried again
        assert not streamer.connected
        await ingest.refresh_hot()
        assert ingest.last_hot_tokens == len(ingest.hot)
        assert streamer.rest_polled() == len(ingest.hot)


async def test_all_markets_streams_every_market(pg: Database, tmp_path: Path) -> None:
    key_file, public = _key(tmp_path)
    async with (
        Simulator(_scenario(), clock=ManualClock(START), kalshi_keys={"k1": public}) as sim,
        _streaming(pg, sim, key_file, all_markets=True) as (ingest, streamer),
    ):
        await until(lambda: streamer.connected and streamer.sids, 10, "subscribed")
        every = sorted(ingest.hot.known)
        assert len(every) > len(ingest.hot)  # more markets than the hot set stream
        for _ in range(20):
            sim.advance(3)
            await asyncio.sleep(0.05)
        await until(lambda: not _disagree(pg, sim, every), 10, "every market's quote")
        assert streamer.live() == set(ingest.hot.markets)
