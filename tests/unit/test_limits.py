"""Client-side rate limits: never more than N requests in any window of the venue's length."""

from __future__ import annotations

import asyncio
import time

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config import validate_settings
from exporter.venues.kalshi.client import KalshiClient
from exporter.venues.limits import MARGIN, SlidingWindow


def _most_in_a_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` in one closed interval of length ``window``."""
    times = sorted(times)
    return max((sum(1 for t in times[i:] if t <= start + window) for i, start in
                enumerate(times)), default=0)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 8),
    window=st.floats(0.1, 20),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=60),
)
def test_no_window_ever_holds_more_than_the_limit(
    limit: int, window: float, gaps: list[float]
) -> None:
    """Requests arriving at any times, served in order: grants never bunch past the limit in
    any window, and none waits longer than the limit requires."""
    limiter = SlidingWindow(limit, window)
    arrivals, now = [], 0.0
    for gap in gaps:
        now += gap
        arrivals.append(now)
    grants: list[float] = []
    for arrival in arrivals:
        at = max(arrival, grants[-1] if grants else 0.0)
        at += limiter.delay(at)
        limiter.grant(at)
        grants.append(at)
    assert _most_in_a_window(grants, window) <= limit
    # Requests reach the venue later than their grants by up to the margin (jitter): still no
    # window of the venue's holds more than the limit.
    assert _most_in_a_window(grants, window + MARGIN * 0.9) <= limit
    for i, (arrival, grant) in enumerate(zip(arrivals, grants, strict=True)):
        earliest = max(arrival, grants[i - 1] if i else 0.0)
        if i >= limit:
            earliest = max(earliest, grants[i - limit] + window)
        assert grant <= earliest + MARGIN + 1e-6  # no longer than the guarantee needs


async def test_a_burst_of_concurrent_requests_is_spread_over_windows() -> None:
    limiter = SlidingWindow(3, 0.3)
    granted: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        granted.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(10)))
    assert len(granted) == 10
    assert _most_in_a_window(granted, 0.3) <= 3


async def test_kalshi_never_gets_more_than_its_budget_in_any_second() -> None:
    """Without a key Kalshi allows 3 reads a second; seven at once used to send five in the
    first second (a leaky bucket's burst)."""
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return httpx.Response(200, json={"series": []})

    settings_ = validate_settings({"venues": {"kalshi": {
        "rest_url": "http://kalshi.test/trade-api/v2"}}})  # fmt: skip
    assert settings_.venues.kalshi.budget == 3.0
    client = KalshiClient(settings_.venues.kalshi, transport=httpx.MockTransport(handler))
    try:
        await asyncio.gather(*(client.series() for _ in range(7)))
    finally:
        await client.aclose()
    assert len(sent) == 7
    assert _most_in_a_window(sent, 1.0) <= 3


async def test_spare_requests_use_the_whole_budget_when_nothing_live_asks() -> None:
    limiter = SlidingWindow(10, 0.2)
    granted: list[float] = []

    async def spare() -> None:
        await limiter.acquire(spare=True)
        granted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(spare() for _ in range(30)))
    # 30 grants at 10 per 0.2 s: the last in the third window, no reserve held back.
    assert time.monotonic() - started < 0.6
    assert _most_in_a_window(granted, 0.2) <= 10


async def test_live_requests_wait_at_most_a_window_for_what_spare_ones_took() -> None:
    """Spare requests saturate the limiter; live ones arriving meanwhile are served first, each
    within one window, and spare ones leave the reserve free while live ones are active. No
    window ever holds more than the limit."""
    limiter = SlidingWindow(10, 0.2)
    grants: list[tuple[float, str]] = []
    waits: list[float] = []
    stop = asyncio.Event()

    async def spare() -> None:
        while not stop.is_set():
            await limiter.acquire(spare=True)
            grants.append((time.monotonic(), "spare"))

    async def live() -> None:
        for _ in range(15):
            asked = time.monotonic()
            await limiter.acquire()
            now = time.monotonic()
            waits.append(now - asked)
            grants.append((now, "live"))
            await asyncio.sleep(0.03)

    spares = [asyncio.create_task(spare()) for _ in range(4)]
    await asyncio.sleep(0.3)  # the spare lane has filled every window
    await live()
    stop.set()
    await asyncio.gather(*spares)
    times = [t for t, _ in grants]
    assert _most_in_a_window(times, 0.2) <= 10
    assert max(waits) <= 0.2 + MARGIN + 0.05
    # Served first, from the reserve: most live requests do not wait at all (in one lane they
    # would queue behind the spare ones, a grant's spacing each).
    assert sorted(waits)[len(waits) // 2] < 0.01
    assert sum(1 for _, lane in grants if lane == "spare") > 20  # spare went on meanwhile
