"""The simulator: the world, its clock, the scenario's faults, and the venues' servers."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from exporter.sim.clock import Clock, ManualClock, RealClock
from exporter.sim.faults import Faults
from exporter.sim.kalshi import PREFIX, KalshiRest
from exporter.sim.polymarket import Clob, DataApi, Gamma
from exporter.sim.scenario import Scenario, load_scenario
from exporter.sim.streams import (
    KALSHI_WS_PATH,
    KalshiStream,
    PolymarketStream,
    RtdsStream,
    load_public_keys,
)
from exporter.sim.truth import Injected, Truth
from exporter.sim.world import World

ROLES = ("gamma", "clob", "data", "kalshi")
TICK_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Urls:
    gamma: str
    clob: str
    data: str
    polymarket_ws: str
    polymarket_rtds: str
    kalshi_rest: str
    kalshi_ws: str

    def venues(self) -> dict[str, Any]:
        """The ``venues`` section of a movers configuration pointing at this simulator."""
        return {
            "polymarket": {
                "gamma_url": self.gamma,
                "clob_url": self.clob,
                "data_url": self.data,
                "ws_url": self.polymarket_ws,
                "rtds_url": self.polymarket_rtds,
            },
            "kalshi": {"rest_url": self.kalshi_rest, "ws_url": self.kalshi_ws},
        }


class Simulator:
    """Local Polymarket and Kalshi servers over one deterministic world.

    ``async with Simulator(scenario) as sim:`` starts them on ``host`` (ports from ``ports`` by
    role — gamma, clob, data, kalshi — 0 meaning any free port) and ``sim.urls`` says where.
    With a :class:`ManualClock`, time moves only through :meth:`advance`.
    ``kalshi_keys`` maps API key ids to PEM public keys the websocket handshake accepts.
    """

    def __init__(
        self,
        scenario: Scenario | None = None,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        kalshi_keys: dict[str, bytes] | None = None,
    ) -> None:
        self.scenario = scenario or load_scenario()
        self.clock = clock or RealClock(self.scenario.start, self.scenario.speed)
        self.world = World(self.scenario, self.clock.start)
        self.truth = Truth()
        self.faults = Faults(self.scenario, self.truth)
        self.host = host
        self.ports = {role: 0 for role in ROLES} | (ports or {})
        socket = self.scenario.websocket
        self.polymarket_stream = PolymarketStream(
            self, socket.polymarket_ping_timeout.total_seconds()
        )
        self.rtds_stream = RtdsStream(self, socket.polymarket_ping_timeout.total_seconds())
        self.kalshi_stream = KalshiStream(
            self, load_public_keys(kalshi_keys or {}), socket.kalshi_ping_interval.total_seconds()
        )
        self._drops = sorted(self.scenario.entries("drop_websockets"), key=lambda e: e.start)
        self._runners: list[web.AppRunner] = []
        self._ticker: asyncio.Task[None] | None = None
        self.urls: Urls | None = None

    # --- time -----------------------------------------------------------------------------------

    def sync(self) -> float:
        """Bring the world up to the clock and stream what changed; the simulated seconds now."""
        now = self.clock.elapsed()
        changes = self.world.advance_to(now)
        if changes:
            self.polymarket_stream.publish(changes, now)
            self.rtds_stream.publish(changes, now)
            self.kalshi_stream.publish(changes, now)
        while self._drops and self._drops[0].start <= now:
            entry = self._drops.pop(0)
            venue = entry.drop_websockets.venue if entry.drop_websockets else "all"
            dropped = 0
            if venue in ("polymarket", "all"):
                dropped += self.polymarket_stream.drop_all() + self.rtds_stream.drop_all()
            if venue in ("kalshi", "all"):
                dropped += self.kalshi_stream.drop_all()
            self.truth.injected.append(
                Injected(now, "drop_websockets", venue, f"{dropped} connections")
            )
        return now

    def advance(self, seconds: float) -> float:
        """Move a manual clock forward and play what happens; the simulated seconds now."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs a ManualClock; real clocks move by themselves")
        self.clock.advance(seconds)
        return self.sync()

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> Urls:
        gamma = Gamma(self).app()
        clob = Clob(self).app()
        clob.router.add_get("/ws/market", self.polymarket_stream.handle)
        data = DataApi(self).app()
        data.router.add_get("/rtds", self.rtds_stream.handle)
        kalshi = web.Application()
        KalshiRest(self).add_routes(kalshi)
        kalshi.router.add_get(KALSHI_WS_PATH, self.kalshi_stream.handle)
        bound: dict[str, str] = {}
        for role, app in (("gamma", gamma), ("clob", clob), ("data", data), ("kalshi", kalshi)):
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.ports[role])
            await site.start()
            self._runners.append(runner)
            port = runner.addresses[-1][1]
            bound[role] = f"{self.host}:{port}"
        self.urls = Urls(
            gamma=f"http://{bound['gamma']}",
            clob=f"http://{bound['clob']}",
            data=f"http://{bound['data']}",
            polymarket_ws=f"ws://{bound['clob']}/ws/market",
            polymarket_rtds=f"ws://{bound['data']}/rtds",
            kalshi_rest=f"http://{bound['kalshi']}{PREFIX}",
            kalshi_ws=f"ws://{bound['kalshi']}{KALSHI_WS_PATH}",
        )
        self._ticker = asyncio.create_task(self._tick())
        return self.urls

    async def _tick(self) -> None:
        while True:
            self.sync()
            await asyncio.sleep(TICK_SECONDS)

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self.polymarket_stream.drop_all()
        self.rtds_stream.drop_all()
        self.kalshi_stream.drop_all()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
