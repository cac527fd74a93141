"""Shared plumbing of the simulated venues: number and time formats, and the request wrapper
that applies the scenario's faults and records what was served."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from exporter.sim.faults import Faults
    from exporter.sim.truth import Truth
    from exporter.sim.world import World


class Host(Protocol):
    """What a venue's routes need from the simulator."""

    world: World
    faults: Faults
    truth: Truth

    def sync(self) -> float:
        """Bring the world up to the clock; the simulated seconds now."""
        ...


class Reject(Exception):
    """A venue error response (400, 404, 422 …) raised from a handler."""

    def __init__(self, status: int, body: object) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


Handler = Callable[[web.Request, float], Awaitable[object]]


def route(host: Host, venue: str, name: str, handler: Handler) -> Any:
    """Wrap a handler: sync the world, apply refusals, delays and truncation, count responses."""

    async def serve(request: web.Request) -> web.StreamResponse:
        host.truth.arrivals.append((time.monotonic(), name))
        now = host.sync()
        refusal = host.faults.refusal(venue, name, now)
        if refusal is not None:
            host.truth.responses[(name, refusal.status)] += 1
            return _json(refusal.body, refusal.status)
        delay = host.faults.delay(venue, name, now)
        if delay:
            await asyncio.sleep(delay)
        status = 200
        try:
            body: object = await handler(request, now)
        except Reject as exc:
            status, body = exc.status, exc.body
        host.truth.responses[(name, status)] += 1
        payload = orjson.dumps(body)
        if status == 200 and host.faults.truncate(venue, name, now):
            payload = payload[: max(1, len(payload) // 2)]
        return web.Response(body=payload, status=status, content_type="application/json")

    return serve


def _json(body: object, status: int) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


# --- formats ------------------------------------------------------------------------------------


def trim(milli: int) -> str:
    """Polymarket's price strings: ``680 -> "0.68"``, ``1 -> "0.001"``, ``1000 -> "1"``."""
    whole, frac = divmod(milli, 1000)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:03d}".rstrip("0")


def trim_float(value: float) -> str:
    """Sizes as Polymarket writes them: ``"667.12"``, ``"800"``."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def dollars(milli: int) -> str:
    """Kalshi's ``*_dollars`` strings: four decimals."""
    return f"{milli / 1000:.4f}"


def fp(value: float) -> str:
    """Kalshi's ``*_fp`` counts: two decimals."""
    return f"{value:.2f}"


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z`` and microseconds, as both venues send."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, venue_error: Callable[[str], Reject]) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "pos":
            raise ValueError(text)
        return int(value)
    except ValueError:
        raise venue_error("invalid cursor") from None


def int_param(
    request: web.Request, name: str, default: int, venue_error: Callable[[str], Reject]
) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise venue_error(f"invalid {name}: {raw!r}") from None


def list_param(request: web.Request, *names: str) -> list[str]:
    """A list given as repeated keys or comma-separated (venues accept both)."""
    values: list[str] = []
    for name in names:
        for raw in request.query.getall(name, []):
            values.extend(v for v in raw.split(",") if v)
    return values


def bool_param(request: web.Request, name: str) -> bool | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    return raw.lower() in ("true", "1", "yes")
