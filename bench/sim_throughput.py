"""How fast the venue simulator serves: full sweeps of large universes, and websocket frames.

Run by hand (not a test):
``.venv/bin/python -m bench.sim_throughput [--polymarket N] [--kalshi N]``.
Builds the universe (default 30,000 Polymarket and 150,000 Kalshi markets), then with the clock
held still sweeps Gamma ``/events/keyset`` (500 events a page) and Kalshi ``/markets`` (1,000 a
page) end to end, then streams a simulated hour to one Polymarket and one Kalshi websocket
client. Client and server share one process (and its CPU). Writes
bench/results/sim_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from exporter.sim import ManualClock, Simulator, load_scenario

RESULTS = Path(__file__).parent / "results"


async def sweep(client: httpx.AsyncClient, url: str, key: str, cursor_key: str,
                params: dict[str, Any]) -> tuple[int, int, float, int]:  # fmt: skip
    """``(pages, records, seconds, bytes)`` of one full cursor walk."""
    pages = records = size = 0
    cursor = None
    started = time.perf_counter()
    while True:
        query = dict(params)
        if cursor:
            query["after_cursor" if cursor_key == "next_cursor" else "cursor"] = cursor
        response = await client.get(url, params=query)
        response.raise_for_status()
        body = response.json()
        pages += 1
        size += len(response.content)
        records += len(body[key])
        cursor = body.get(cursor_key)
        if not cursor:
            return pages, records, time.perf_counter() - started, size


async def ping(socket: Any, until: asyncio.Event) -> None:
    """Polymarket closes a socket that does not send ``PING`` every few seconds."""
    while not until.is_set():
        await socket.send("PING")
        await asyncio.sleep(5)


async def count_frames(socket: Any, until: asyncio.Event, counter: list[int]) -> None:
    while not until.is_set():
        try:
            frame = await asyncio.wait_for(socket.recv(), 0.5)
        except TimeoutError:
            continue
        counter[0] += 1
        counter[1] += len(frame)


async def run(polymarket: int, kalshi: int) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    scenario = load_scenario({"seed": 1, "universe": {"polymarket": polymarket, "kalshi": kalshi}})
    started = time.perf_counter()
    sim = Simulator(scenario, clock=ManualClock(datetime(2026, 11, 20, tzinfo=UTC)),
                    kalshi_keys={"bench": public})  # fmt: skip
    build = time.perf_counter() - started
    result: dict[str, Any] = {"universe_build_seconds": round(build, 2)}
    async with sim:
        assert sim.urls is not None
        sim.advance(600)
        async with httpx.AsyncClient(timeout=60) as client:
            for name, url, key_, cursor, params in (
                ("gamma_events_keyset_sweep", f"{sim.urls.gamma}/events/keyset", "events",
                 "next_cursor", {"limit": 500, "closed": "false"}),
                ("kalshi_markets_sweep", f"{sim.urls.kalshi_rest}/markets", "markets", "cursor",
                 {"limit": 1000}),
            ):  # fmt: skip
                pages, records, seconds, size = await sweep(client, url, key_, cursor, params)
                result[name] = {
                    "pages": pages,
                    "records": records,
                    "seconds": round(seconds, 2),
                    "pages_per_s": round(pages / seconds, 1),
                    "records_per_s": round(records / seconds),
                    "mb_per_s": round(size / seconds / 1e6, 1),
                }
        # Websockets: a Polymarket client on 1,000 markets' tokens, a Kalshi client on the
        # ticker and trade channels of every market; one simulated hour, a second at a time.
        tokens = [t for m in sim.world.open_markets("polymarket")[:1000] for t in m.tokens]  # type: ignore[attr-defined]
        stamp = str(int(time.time() * 1000))
        signature = key.sign(
            f"{stamp}GET/trade-api/ws/v2".encode(),
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
            hashes.SHA256(),
        )
        headers = {"KALSHI-ACCESS-KEY": "bench", "KALSHI-ACCESS-TIMESTAMP": stamp,
                   "KALSHI-ACCESS-SIGNATURE": base64.b64encode(signature).decode()}  # fmt: skip
        # One process runs server and clients, so keepalive pings would time out while the
        # world advances; the Polymarket client still sends the venue's own PING.
        poly_connect = websockets.connect(sim.urls.polymarket_ws, max_size=None, ping_interval=None)
        kalshi_connect = websockets.connect(
            sim.urls.kalshi_ws, additional_headers=headers, max_size=None, ping_interval=None
        )
        async with poly_connect as poly, kalshi_connect as kx:
            await poly.send(json.dumps({"assets_ids": tokens, "type": "market"}))
            await kx.send(json.dumps({"id": 1, "cmd": "subscribe",
                                      "params": {"channels": ["ticker", "trade"]}}))  # fmt: skip
            done = asyncio.Event()
            poly_count, kx_count = [0, 0], [0, 0]
            readers = [
                asyncio.create_task(count_frames(poly, done, poly_count)),
                asyncio.create_task(count_frames(kx, done, kx_count)),
                asyncio.create_task(ping(poly, done)),
            ]
            await asyncio.sleep(1)
            poly_count[:] = kx_count[:] = [0, 0]
            started = time.perf_counter()
            for _ in range(3600):
                sim.advance(1)
                await settle(sim, 2000)  # let the clients read: this is not a flood test
            await settle(sim, 0)
            await asyncio.sleep(0.5)
            seconds = time.perf_counter() - started - 0.5
            done.set()
            await asyncio.gather(*readers)
        result["websocket_hour"] = {
            "seconds": round(seconds, 2),
            "polymarket_frames": poly_count[0],
            "kalshi_frames": kx_count[0],
            "frames_per_s": round((poly_count[0] + kx_count[0]) / seconds),
            "mb_per_s": round((poly_count[1] + kx_count[1]) / seconds / 1e6, 1),
        }
    return result


async def settle(sim: Simulator, backlog: int) -> None:
    """Wait until the simulator's outboxes hold at most ``backlog`` frames."""
    while sum(c.outbox.qsize() for c in _connections(sim)) > backlog:  # noqa: ASYNC110 (polling a queue we do not own)
        await asyncio.sleep(0.001)


def _connections(sim: Simulator) -> list[Any]:
    return [c.conn for c in sim.polymarket_stream.clients] + [
        c.conn for c in sim.kalshi_stream.clients
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polymarket", type=int, default=30_000)
    parser.add_argument("--kalshi", type=int, default=150_000)
    args = parser.parse_args()
    result = {
        "benchmark": "sim_throughput",
        "polymarket_markets": args.polymarket,
        "kalshi_markets": args.kalshi,
        **asyncio.run(run(args.polymarket, args.kalshi)),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sim_throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
