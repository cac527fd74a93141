"""`movers run` as a real process: start it with a configuration, read its /metrics, stop it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A sample's key in :data:`Samples`."""
    return (name, tuple(sorted(labels.items())))


class Exporter:
    def __init__(self, database_url: str, config: dict[str, Any], folder: Path) -> None:
        self.port = free_port()
        self.path = folder / "movers.yaml"
        self.log = folder / "exporter.log"
        """Its stderr: a file, so a chatty exporter never blocks on a full pipe."""
        data = {**config, "metrics": {"host": "127.0.0.1", "port": self.port}}
        data.setdefault("logging", {"format": "json"})
        self.path.write_text(yaml.safe_dump(data))
        self.env = {
            **os.environ,
            "MOVERS_DATABASE_URL": database_url,
            "MOVERS_CONFIG": str(self.path),
        }
        self.process: asyncio.subprocess.Process | None = None
        self.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=5)

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "exporter", "run", env=self.env, stderr=log
            )

    async def samples(self) -> Samples:
        try:
            text = (await self.client.get("/metrics")).text
        except httpx.TransportError:
            return {}
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    async def wait_for(
        self, condition: Callable[[Samples], bool], within: float, what: str
    ) -> Samples:
        """Scrape until ``condition`` holds; fails naming ``what`` after ``within`` seconds."""
        deadline = time.monotonic() + within
        samples: Samples = {}
        while time.monotonic() < deadline:
            samples = await self.samples()
            if samples and condition(samples):
                return samples
            if self.process is not None and self.process.returncode is not None:
                break
            await asyncio.sleep(0.2)
        raise AssertionError(f"not within {within} s: {what}")

    async def stop(self) -> tuple[int, str, float]:
        """SIGTERM; returns exit code, stderr and seconds to exit."""
        assert self.process is not None
        started = time.monotonic()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), 30)
        seconds = time.monotonic() - started
        await self.client.aclose()
        return code, self.log.read_text(), seconds


def fast_delays() -> Callable[[], Generator[float]]:
    """A reconnect backoff of 50 ms, for stream tests."""

    def delays() -> Generator[float]:
        while True:
            yield 0.05

    return delays


async def until(condition: Callable[[], object], within: float, what: str) -> None:
    """Wait until ``condition()`` is true; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


async def until_async(
    condition: Callable[[], Awaitable[Any]], within: float, what: str, every: float = 0.3
) -> Any:
    """Await ``condition()`` until it returns something true, and return that; fail naming
    ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await condition()
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within} s: {what}")


async def every_metric() -> set[str]:
    """The name of every metric the exporter can export (``_total`` on counters, ``_info`` on
    info metrics), read from the composition root's own registry with every feature on."""
    from datetime import UTC, datetime

    from exporter.alerts import AlertHistory
    from exporter.config import validate_settings
    from exporter.metrics import build_registry
    from exporter.movers import MoversView
    from exporter.service import build_ingest
    from exporter.storage.database import Database
    from exporter.storage.db import create_pool
    from exporter.storage.health import DatabaseFigures
    from exporter.storage.migrate import Mode
    from exporter.storage.writer import Writer

    polymarket = {"gamma_url": "http://127.0.0.1:9", "trades_stream": {"enabled": True}}
    settings = validate_settings({"venues": {"polymarket": polymarket}})
    pool = create_pool(settings.database)  # never opened: nothing here touches a database
    writer = Writer.from_settings(pool, Mode.PLAIN, settings)
    ingest = build_ingest(settings, writer)
    try:
        ingest.movers.view = MoversView(computed_at=datetime.now(UTC))
        collectors = [*ingest.collectors(), DatabaseFigures(), AlertHistory(Database(pool))]
        suffixes = {"counter": "_total", "info": "_info"}
        return {f.name + suffixes.get(f.type, "") for f in build_registry(collectors).collect()}
    finally:
        await ingest.aclose()


async def run_once(database_url: str, config: Path, within: float = 120) -> tuple[int, str]:
    """``movers run --once`` as a process with ``config``: its exit code and its stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "run", "--once",
        env={**os.environ, "MOVERS_DATABASE_URL": database_url, "MOVERS_CONFIG": str(config)},
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    return process.returncode, err.decode()
