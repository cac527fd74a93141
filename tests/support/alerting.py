"""Prometheus, promtool, Alertmanager and amtool for the alerting tests: the binaries scripts/setup
unpacks into .tools/bin (the versions docker-compose.yml pins), and helpers that run real servers
on 127.0.0.1 with the project's configuration rewritten for a test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("MOVERS_TOOLS_DIR", REPO / ".tools" / "bin"))
RULES = REPO / "alertmanager" / "rules"
ALERTMANAGER_YML = REPO / "alertmanager" / "alertmanager.yml"
PROMETHEUS_YML = REPO / "prometheus" / "prometheus.yml"
SECRETS = "/run/alertmanager/secrets/"


def tool(name: str) -> str:
    """The path of a Prometheus/Alertmanager binary; fails saying how to get it."""
    path = TOOLS / name
    if not path.exists():
        message = f"{path} is missing: run scripts/setup (it installs Prometheus and Alertmanager)"
        if os.environ.get("MOVERS_TEST_ALLOW_NO_DB") == "1":
            pytest.skip(message)
        pytest.fail(message, pytrace=False)
    return str(path)


def run(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(name), *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )


def alertmanager_config(folder: Path, urls: dict[str, str], history_url: str) -> Path:
    """alertmanager.yml copied into ``folder`` with its secret files written there (``urls``: file
    name -> webhook URL) and the history webhook pointed at ``history_url``."""
    config: dict[str, Any] = yaml.safe_load(ALERTMANAGER_YML.read_text())
    secrets = folder / "secrets"
    secrets.mkdir(exist_ok=True)
    for name, url in urls.items():
        (secrets / name).write_text(url + "\n")
    for receiver in config["receivers"]:
        for kind, key in (
            ("discord_configs", "webhook_url_file"),
            ("slack_configs", "api_url_file"),
        ):
            for item in receiver.get(kind, []):
                item[key] = str(secrets / item[key].removeprefix(SECRETS))
        for item in receiver.get("webhook_configs", []):
            item["url"] = history_url
            auth = item.get("http_config", {}).get("authorization", {})
            if "credentials_file" in auth:
                name = auth["credentials_file"].removeprefix(SECRETS)
                if not (secrets / name).exists():
                    (secrets / name).write_text("")
                auth["credentials_file"] = str(secrets / name)
    config["templates"] = [
        str(REPO / "alertmanager" / t.removeprefix("/etc/alertmanager/"))
        for t in config["templates"]
    ]
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Server:
    """A Prometheus or Alertmanager process on a free port, stopped at the end of the block."""

    def __init__(self, command: list[str], port: int, log: Path, ready: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{command[0]} exited: {log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + ready, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise AssertionError(f"{command[0]} not ready: {log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def _serving(name: str, flags: list[str], folder: Path) -> Iterator[Server]:
    """``name`` with ``flags`` (``{port}`` and ``{data}`` filled in) until the block ends."""
    port = free_port()
    data = folder / f"{name}-data"
    data.mkdir(exist_ok=True)
    command = [tool(name), *(f.format(port=port, data=data) for f in flags)]
    server = Server(command, port, folder / f"{name}.log", "/-/ready")
    try:
        yield server
    finally:
        server.stop()


def alertmanager(config: Path, folder: Path) -> contextlib.AbstractContextManager[Server]:
    return _serving(
        "alertmanager",
        [f"--config.file={config}", "--storage.path={data}",
         "--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--web.external-url=http://127.0.0.1:{port}", "--log.level=debug"],
        folder,
    )  # fmt: skip


def prometheus(config: Path, folder: Path) -> contextlib.AbstractContextManager[Server]:
    return _serving(
        "prometheus",
        [f"--config.file={config}", "--storage.tsdb.path={data}",
         "--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle",
         # Firing alerts are sent again this often (default 1m): an alert that fired before
         # Alertmanager was discovered reaches it within the test.
         "--rules.alert.resend-delay=2s"],
        folder,
    )  # fmt: skip


def copy_rules(folder: Path) -> Path:
    """The rule files copied into ``folder/rules`` for a test to adjust."""
    target = folder / "rules"
    shutil.copytree(RULES, target, dirs_exist_ok=True)
    return target


class ChatStandIn:
    """Records what Alertmanager posts to the Discord and Slack webhook URLs."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.arrived: list[float] = []
        """When each of ``received`` arrived (unix seconds)."""
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        async def hook(request: web.Request) -> web.Response:
            body = await request.json()
            self.arrived.append(time.time())
            self.received.append((request.path, body))
            # Discord answers 204, Slack 200 "ok".
            if request.path.startswith("/discord/"):
                return web.Response(status=204)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/{app}/{channel}", hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def texts(self, path: str) -> list[str]:
        """Each message posted to ``path`` as one text (title, content, description)."""
        return [text for _, text in self.timed(path)]

    def timed(self, path: str) -> list[tuple[float, str]]:
        """Each message posted to ``path``: when it arrived (unix seconds) and its text."""
        out = []
        for (where, body), at in zip(self.received, self.arrived, strict=True):
            if where != path:
                continue
            if "embeds" in body:  # Discord
                parts = [body.get("content", "")]
                parts += [
                    f"{e.get('title', '')}\n{e.get('description', '')}" for e in body["embeds"]
                ]
            else:  # Slack
                parts = [f"{a.get('title', '')}\n{a.get('text', '')}" for a in body["attachments"]]
            out.append((at, "\n".join(parts)))
        return out

    def moves(self, path: str, since: float, until: float) -> list[tuple[float, str]]:
        """The MarketMoveLarge messages of one market posted to ``path`` between ``since`` and
        ``until``: when each arrived and its market's title (the first 40 characters)."""
        return [
            (at, found.group(1)[:40])
            for at, text in self.timed(path)
            if "· MarketMoveLarge ·" in text and "Group mover" not in text
            and (found := re.search(r"\[([^\]]+)\]\(https?://", text)) is not None
            and since <= at <= until
        ]  # fmt: skip

    async def wait_for(
        self, path: str, condition: Callable[[str], bool], within: float, what: str
    ) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for text in self.texts(path):
                if condition(text):
                    return text
            await asyncio.sleep(0.2)
        raise AssertionError(f"not within {within} s: {what}; got {self.texts(path)}")


def predicted_moves(report: dict[str, Any]) -> list[tuple[float, str]]:
    """``movers tune --json``'s MarketMoveLarge messages: when each is sent and its market's
    title (the first 40 characters), as :meth:`ChatStandIn.moves` gives the delivered ones."""
    return [
        (datetime.fromisoformat(s["at"]).timestamp(), s["markets"][0]["title"][:40])
        for s in report["sent"]
    ]


def matched(
    predicted: list[tuple[float, str]], delivered: list[tuple[float, str]], early: float,
    late: float,
) -> int:  # fmt: skip
    """How many delivered messages a prediction of the same market explains, each arriving
    from ``early`` seconds before the predicted instant to ``late`` after it."""
    unmatched = list(delivered)
    for at, title in predicted:
        match = next(
            (d for d in unmatched if d[1] == title and at - early <= d[0] <= at + late), None
        )
        if match is not None:
            unmatched.remove(match)
    return len(delivered) - len(unmatched)
