"""The database's turns: the movers refresh first, background steps in the gaps between
refreshes, and never a step starved."""

from __future__ import annotations

import asyncio

from exporter.storage.turns import LATE, Turns


class Track:
    """What ran when, and a check that a step and a refresh never ran at once."""

    def __init__(self, turns: Turns) -> None:
        self.turns = turns
        self.order: list[str] = []
        self.active: set[str] = set()
        self.waited: list[float] = []

    def enter(self, name: str) -> None:
        kind = name.rstrip("0123456789")
        other = "refresh" if kind == "step" else "step"
        assert not any(a.startswith(other) for a in self.active), (name, self.active)
        self.active.add(name)
        self.order.append(name)

    async def step(self, name: str, seconds: float, release: asyncio.Event | None = None) -> None:
        async with self.turns.step():
            self.enter(name)
            if release is not None:
                await release.wait()
            await asyncio.sleep(seconds)
            self.active.discard(name)

    async def refresh(self, name: str, every: float, seconds: float = 0.0) -> None:
        async with self.turns.refresh(every) as waited:
            self.enter(name)
            self.waited.append(waited)
            await asyncio.sleep(seconds)
            self.active.discard(name)


async def until(condition: object, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_refresh_waits_for_the_step_in_flight_and_goes_before_the_next() -> None:
    track = Track(Turns())
    release = asyncio.Event()
    first = asyncio.create_task(track.step("step1", 0.0, release))
    await until(lambda: track.order == ["step1"])
    second = asyncio.create_task(track.step("step2", 0.0))  # asked before the refresh
    await asyncio.sleep(0.05)
    refresh = asyncio.create_task(track.refresh("refresh1", 60.0))
    await asyncio.sleep(0.3)
    assert track.order == ["step1"]  # the refresh waits for the step in flight
    release.set()
    await asyncio.wait_for(asyncio.gather(first, refresh), 5)
    await asyncio.wait_for(second, 5)  # then: the next refresh is due in a minute
    assert track.order == ["step1", "refresh1", "step2"]
    assert track.waited[0] >= 0.25


async def test_a_step_that_would_overlap_the_next_refresh_waits_for_it() -> None:
    loop = asyncio.get_running_loop()
    track = Track(Turns())
    await track.step("step1", 0.4)  # the estimate: 0.4 s
    every = 1.2
    asked = loop.time()
    await track.refresh("refresh1", every)  # the next is due at `asked + 1.2`
    await track.step("step2", 0.4)  # fits: 0.4 s before the next refresh is due
    await asyncio.sleep(max(0.0, asked + 0.9 - loop.time()))
    late = asyncio.create_task(track.step("step3", 0.0))  # 0.3 s left: does not fit
    await asyncio.sleep(max(0.0, asked + every - loop.time()))
    assert "step3" not in track.order
    await track.refresh("refresh2", every)
    await asyncio.wait_for(late, 5)
    assert track.order == ["step1", "refresh1", "step2", "refresh2", "step3"]


async def test_steps_longer_than_the_gap_still_run_one_after_each_refresh() -> None:
    """Steps of 0.3 s, a refresh every 0.2 s: no gap fits a step, so each runs right after a
    refresh ends, and refreshes wait for it."""
    track = Track(Turns())
    await track.step("step0", 0.3)
    stop = asyncio.Event()

    async def refreshes() -> None:
        count = 0
        while not stop.is_set():
            count += 1
            await track.refresh(f"refresh{count}", 0.2)
            await asyncio.sleep(0.2)

    async def steps() -> None:
        for n in range(1, 5):
            await track.step(f"step{n}", 0.3)

    driver = asyncio.create_task(refreshes())
    await asyncio.wait_for(steps(), 10)
    stop.set()
    await asyncio.wait_for(driver, 5)
    steps_done = [name for name in track.order if name.startswith("step")]
    assert steps_done == [f"step{n}" for n in range(5)]
    # Each step after the first ran right after a refresh.
    for n in range(1, 5):
        before = track.order[track.order.index(f"step{n}") - 1]
        assert before.startswith("refresh"), track.order


async def test_a_step_does_not_wait_for_a_refresh_that_does_not_come() -> None:
    """The collector stopped leading (or its refresh stopped): a step that would not fit before
    the due time runs once the refresh is late."""
    loop = asyncio.get_running_loop()
    track = Track(Turns())
    await track.step("step1", 0.4)
    asked = loop.time()
    await track.refresh("refresh1", 0.3)  # the next due in 0.3 s: the step does not fit
    await asyncio.wait_for(track.step("step2", 0.0), 10)
    assert loop.time() - asked >= 0.3 + LATE - 0.1  # it waited past the due time
    assert loop.time() - asked < 0.3 + LATE + 2.0
    assert track.order == ["step1", "refresh1", "step2"]


async def test_with_no_refresh_steps_run_at_once() -> None:
    loop = asyncio.get_running_loop()
    track = Track(Turns())
    started = loop.time()
    for n in range(3):
        await track.step(f"step{n}", 0.1)
    assert loop.time() - started < 1.0
