"""Polymarket market channel: messages per second through parse + book update + coalescing.

Run by hand (not a test): ``.venv/bin/python -m bench.stream_parse [--messages N]``.
Frames are the current ``price_change`` form (one change each, with best bid/ask) over 2,000
assets whose books were first set by a ``book`` each. Times (process CPU, best of 5) a bare
``orjson`` decode of the frames against the streamer's own frame handler (parse, book update,
displayed price, the coalescing map), on one core. Writes bench/results/stream_parse.json.
Target: >= 50,000 price_change messages/s.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import cpu, write_result
from exporter.config import validate_settings
from exporter.ingest.common import Rejects
from exporter.ingest.hot import HotSet
from exporter.ingest.polymarket_stream import PolymarketStreamer
from exporter.model import Venue

ASSETS = 2000


def frames(count: int, seed: int = 7) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    assets = [str(10**70 + i) for i in range(ASSETS)]
    books = [
        orjson.dumps({"event_type": "book", "asset_id": a, "market": "0x1", "timestamp": "1",
                      "bids": [{"price": "0.40", "size": "10"}],
                      "asks": [{"price": "0.42", "size": "10"}]}).decode()
        for a in assets
    ]  # fmt: skip
    changes = []
    for i in range(count):
        bid = rng.randrange(1, 97)
        changes.append(
            orjson.dumps({
                "event_type": "price_change", "market": "0x1", "timestamp": str(i),
                "price_changes": [{"asset_id": assets[i % ASSETS], "price": f"0.{bid:02d}",
                                   "size": str(rng.randrange(0, 500)), "side": "BUY",
                                   "hash": "ab" * 20, "best_bid": f"0.{bid:02d}",
                                   "best_ask": f"0.{bid + 2:02d}"}],
            }).decode()
        )  # fmt: skip
    return books, changes


def handler() -> PolymarketStreamer:
    settings = validate_settings({})
    # The frame handler writes nothing and asks nothing of the client.
    nothing: Any = None
    return PolymarketStreamer(
        settings.venues.polymarket, HotSet(Venue.POLYMARKET), nothing, nothing, Rejects()
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    args = parser.parse_args()
    books, changes = frames(args.messages)
    received = datetime.now(UTC)

    def decode() -> None:
        for frame in changes:
            orjson.loads(frame)

    def full() -> None:
        streamer = handler()
        for frame in books:
            streamer.on_frame(frame, received)
        for frame in changes:
            streamer.on_frame(frame, received)
        assert streamer.messages["price_change"] == len(changes)

    def books_only() -> None:
        streamer = handler()
        for frame in books:
            streamer.on_frame(frame, received)

    bare = cpu(decode)
    total = cpu(full) - cpu(books_only)
    write_result(
        "stream_parse",
        {
            "messages": len(changes),
            "assets": ASSETS,
            "cpu_seconds": {"orjson_decode": round(bare, 3), "handler": round(total, 3)},
            "messages_per_second": round(len(changes) / total),
            "ratio_to_orjson_decode": round(total / bare, 2),
            "target_messages_per_second": 50_000,
        },
    )


if __name__ == "__main__":
    main()
