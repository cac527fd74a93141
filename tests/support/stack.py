"""The compose stack without Docker: each service started natively from the very files compose
mounts, with the environment compose passes, both read from `docker-compose config` (so the
stack cannot drift from docker-compose.yml).

Only two things are rewritten, as the container network and mounts would have them:
- host names: a service's name (``exporter:9464``, ``alertmanager:9093``, ``timescaledb:5432``,
  a bare ``simulator``) becomes 127.0.0.1 (the database: the test server's address), and
  ``0.0.0.0`` listeners become 127.0.0.1; services that listen on the same port as another (the
  extra collectors of docker-compose.collectors.yml) get a loopback address of their own, as
  their containers have (:attr:`Network.hosts`);
- mount paths: each bind mount's files are copied under a folder that stands in for the
  container's ``/`` (``/etc/prometheus``, ``/etc/alertmanager``, ``/run/alertmanager``, …), and
  the container paths in the commands and in those files point there; an image's own binary
  (``/bin/prometheus``, ``/bin/alertmanager``) is the one scripts/setup installs.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import yaml

from tests.support.alerting import TOOLS, tool
from tests.support.databases import Database, Server, fresh
from tests.support.image import Image, rebase_paths

REPO = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = REPO / ".env.example"
SERVICES = ("timescaledb", "exporter", "simulator", "prometheus", "alertmanager", "grafana")


def compose_config(
    env: Mapping[str, str], folder: Path, *profiles: str, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """`docker-compose config` of the shipped file (and the shipped ``overrides``, e.g.
    ``docker-compose.collectors.yml``) with ``env`` as the ``.env`` file (written from
    .env.example with ``env``'s values filled in)."""
    text = ENV_EXAMPLE.read_text()
    for key, value in env.items():
        line = f"{key}={value}"
        text, found = re.subn(rf"^#? ?{key}=.*$", lambda _m, line=line: line, text, flags=re.M)
        if not found:
            text += f"\n{line}\n"
    env_file = folder / "env"
    env_file.write_text(text)
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: run scripts/setup"
    flags = [arg for p in profiles for arg in ("--profile", p)]
    files = [arg for f in ("docker-compose.yml", *overrides) for arg in ("-f", str(REPO / f))]
    result = subprocess.run(
        [binary, "--project-directory", str(REPO), *files,
         "--env-file", str(env_file), *flags, "config"],
        capture_output=True, text=True, check=False, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


@dataclass
class Network:
    """Where each service's name points: 127.0.0.1, the database at its test address, and a
    service that listens on the same port as another (the extra collectors of
    docker-compose.collectors.yml) at a loopback address of its own, as its container's."""

    database: str
    """host:port of the test's TimescaleDB."""
    hosts: dict[str, str] = field(default_factory=dict)
    """Services at another loopback address than 127.0.0.1 (``exporter-1`` -> 127.0.0.2)."""

    def rewrite(self, text: str) -> str:
        text = re.sub(r"\btimescaledb:5432\b", self.database, text)
        for name, address in self.hosts.items():
            text = re.sub(rf"(?<![\w.-]){re.escape(name)}:(\d+)\b", rf"{address}:\1", text)
        text = re.sub(rf"\b({'|'.join(SERVICES)}):(\d+)\b", r"127.0.0.1:\2", text)
        return text.replace("0.0.0.0", "127.0.0.1")

    def rewrite_env(self, env: Mapping[str, Any]) -> dict[str, str]:
        out = {}
        for key, value in env.items():
            text = "" if value is None else str(value)
            if key.endswith("__COLLECTOR"):  # a collector's name, which may be its service's
                out[key] = text
            else:
                out[key] = "127.0.0.1" if text in SERVICES else self.rewrite(text)
        return out


@dataclass
class Container:
    """A stand-in for one service's file system: its mounts under ``root``."""

    root: Path
    network: Network
    binaries: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)

    def localize(self, text: str) -> str:
        """Container paths (mount targets, image binaries) moved under ``root``."""
        for binary, real in self.binaries.items():
            text = re.sub(rf"(?<![\w./-]){re.escape(binary)}(?![\w./-])", real, text)
        return rebase_paths(text, self.root, self.targets)

    def mount(self, service: dict[str, Any]) -> None:
        """Copy each bind mount, make each volume and tmpfs, then rewrite the copied files."""
        copied: list[Path] = []
        for volume in service.get("volumes", []):
            if isinstance(volume, str):  # docker-compose 1.x: "source:target[:mode]"
                source_text, target = volume.split(":")[:2]
                kind = "bind" if source_text.startswith("/") else "volume"
            else:
                source_text, target, kind = volume["source"], volume["target"], volume["type"]
            self.targets.append(target)
            where = self.root / target.lstrip("/")
            if kind == "bind":
                source = Path(source_text)
                if source.is_dir():
                    shutil.copytree(source, where, dirs_exist_ok=True)
                    copied += [p for p in where.rglob("*") if p.is_file()]
                else:
                    where.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(source, where)
                    copied.append(where)
                    # Its folder too: a glob there (a file_sd path) finds the mounted file.
                    self.targets.append(str(Path(target).parent))
            else:
                where.mkdir(parents=True, exist_ok=True)
        for target in service.get("tmpfs", []):
            self.targets.append(target)
            (self.root / target.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for path in copied:
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            path.write_text(self.localize(self.network.rewrite(text)))


class Process:
    """A started service: its process and log, stopped with SIGTERM at the end."""

    def __init__(self, name: str, command: Sequence[str], env: Mapping[str, str] | None,
                 log: Path, cwd: Path | None = None) -> None:  # fmt: skip
        self.name = name
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                list(command), env=dict(env) if env is not None else None, cwd=cwd,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def alive(self) -> None:
        code = self.process.poll()
        assert code is None, f"{self.name} exited with {code}:\n{self.tail()}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def wait_http(
    url: str, process: Process, within: float = 60, headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        process.alive()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"{process.name}: {url} not ready within {within} s:\n{process.tail()}")


def alertmanager_command(
    service: dict[str, Any], container: Container
) -> tuple[list[str], dict[str, str]]:
    """The alertmanager service's entry point, localized, with compose's environment."""
    container.mount(service)
    entrypoint = [container.localize(part) for part in service["entrypoint"]]
    script = Path(entrypoint[-1])
    script.write_text(container.localize(script.read_text()))
    env = {"PATH": "/usr/bin:/bin", **container.network.rewrite_env(service["environment"])}
    # The image's defaults listen on every interface: here, loopback.
    listen = ["--web.listen-address=127.0.0.1:9093", "--cluster.listen-address=127.0.0.1:9094"]
    return [*entrypoint, *(service.get("command") or []), *listen], env


def prometheus_command(service: dict[str, Any], container: Container) -> list[str]:
    container.mount(service)
    return [
        tool("prometheus"),
        *(container.localize(arg) for arg in service["command"]),
        "--web.listen-address=127.0.0.1:9090",
    ]


def binaries() -> dict[str, str]:
    return {
        "/bin/alertmanager": str(TOOLS / "alertmanager"),
        "/bin/prometheus": str(TOOLS / "prometheus"),
    }


@contextlib.contextmanager
def compose_database(server: Server, env: dict[str, Any]) -> Iterator[tuple[Database, str]]:
    """The timescaledb service: a clean database on the test server, with the user, password
    and database the image's init creates from compose's POSTGRES_* (the WASM server accepts any
    user and password). Yields it and its host:port."""
    with fresh(server) as database:
        parts = urlsplit(database.url)
        where = f"{parts.hostname}:{parts.port}"
        if database.shared_session:
            yield database, where
            return
        user, name = env["POSTGRES_USER"], env["POSTGRES_DB"]
        with psycopg.connect(database.url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{user}"')
            conn.execute(
                f"CREATE ROLE \"{user}\" LOGIN SUPERUSER PASSWORD '{env['POSTGRES_PASSWORD']}'"
            )
            conn.execute(f'CREATE DATABASE "{name}" OWNER "{user}"')
        try:
            yield database, where
        finally:
            with psycopg.connect(database.url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()


def run_healthcheck(test: Sequence[str], image: Image | None, network: Network) -> int:
    """A compose healthcheck's command, run here: CMD in the image (``image``) or CMD-SHELL in
    this machine's shell, host names rewritten."""
    kind, *argv = [network.rewrite(part) for part in test]
    if kind == "CMD-SHELL":
        return subprocess.run(
            ["/bin/sh", "-c", argv[0]], capture_output=True, check=False
        ).returncode
    assert kind == "CMD", test
    assert image is not None
    result = image.run(argv, entrypoint=False, timeout=30)
    return result.returncode
