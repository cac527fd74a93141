"""The backfill's allowance of points held at once: never over its limit (but for one request
larger than the whole of it, which goes alone), first come first served, nothing lost when a
waiter is cancelled."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.ingest.backfill import Allowance, Request, Target, expected_points


async def _run(limit: int, sizes: list[int], hold: list[float]) -> tuple[list[int], list[int]]:
    """Each size asks in order and holds for its time; what was held when each got in, and
    the order they got in."""
    allowance = Allowance(limit)
    levels: list[int] = []
    order: list[int] = []

    async def one(i: int, points: int) -> None:
        async with allowance.hold(points):
            levels.append(allowance.used)
            order.append(i)
            await asyncio.sleep(hold[i])

    async with asyncio.TaskGroup() as group:
        for i, points in enumerate(sizes):
            group.create_task(one(i, points))
            await asyncio.sleep(0)
    assert allowance.used == 0
    return levels, order


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 100),
    data=st.lists(st.tuples(st.integers(1, 150), st.sampled_from([0, 0.001, 0.002])),
                  min_size=1, max_size=25),
)  # fmt: skip
def test_the_points_held_never_pass_the_limit_and_requests_go_in_order(
    limit: int, data: list[tuple[int, float]]
) -> None:
    sizes = [s for s, _ in data]
    levels, order = asyncio.run(_run(limit, sizes, [h for _, h in data]))
    assert order == sorted(order)  # first come, first served: none overtakes a larger one
    for i, level in zip(order, levels, strict=True):
        assert level <= limit or level == sizes[i]  # over the limit only alone


async def test_a_cancelled_waiter_gives_its_place_to_the_next() -> None:
    allowance = Allowance(10)
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with allowance.hold(8):
            first_in.set()
            await release.wait()

    async def later(points: int, got: list[int]) -> None:
        async with allowance.hold(points):
            got.append(points)

    got: list[int] = []
    holder = asyncio.create_task(first())
    await first_in.wait()
    big = asyncio.create_task(later(9, got))  # does not fit: waits, and so does the next
    small = asyncio.create_task(later(2, got))
    await asyncio.sleep(0.01)
    assert got == []
    assert allowance.used == 8
    big.cancel()
    with pytest.raises(asyncio.CancelledError):
        await big
    await asyncio.wait_for(small, 1)  # it fits beside the first once the big one is gone
    assert got == [2]
    release.set()
    await holder
    assert allowance.used == 0


def test_a_request_expects_a_point_a_step_for_each_target() -> None:
    targets = tuple(Target(f"o{i}", f"a{i}") for i in range(20))
    week = 7 * 86_400
    assert expected_points(Request(targets, 0, week, timedelta(minutes=1))) == 20 * 10_081
    assert expected_points(Request(targets[:1], 0, week, timedelta(hours=1))) == 169
