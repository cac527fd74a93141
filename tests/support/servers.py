"""Start throwaway database servers: a native PostgreSQL cluster, the WASM TimescaleDB.

Used by the test fixtures and by the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """No server could be started; the message says how to get one."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_bindir() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class NativePostgres:
    """A fresh cluster on a free port (as the postgres user when root: initdb refuses root),
    which a test may stop and start again (a database outage)."""

    def __init__(
        self, settings: tuple[str, ...] = (), host_auth: str = "trust", data: Path | None = None
    ) -> None:
        self.host_auth = host_auth
        """How TCP clients authenticate (``scram-sha-256`` checks passwords)."""
        bindir = pg_bindir()
        if bindir is None:
            raise ServerUnavailable(
                "no PostgreSQL server binaries: run scripts/setup (installs Debian's "
                "postgresql-15) or set MOVERS_TEST_POSTGRES_URL"
            )
        self.bindir = bindir
        # pytest's own temp root is 0700: the postgres user could not reach a folder inside it.
        if data is None:
            data = Path(tempfile.mkdtemp(prefix="movers-pg-", dir="/tmp"))
        else:
            data.mkdir(parents=True, exist_ok=True)  # a kept cluster (benchmarks)
        self.data = data
        self.data.chmod(0o755)
        as_root = os.geteuid() == 0
        self.run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(self.data, "postgres", "postgres")
        self.port = free_port()
        self.options = " ".join(
            [
                f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1",
                "-c max_connections=200",
                *(f"-c {item}" for item in settings),
            ]
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self._ctl_run(
            [str(self.bindir / "initdb"), "-D", str(self.data / "db"), "--auth-local=trust",
             f"--auth-host={self.host_auth}", "-U",
             "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]
        )  # fmt: skip

    def start(self) -> None:
        self._ctl_run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data / "db"), "-o", self.options,
             "-l", str(self.data / "server.log"), "-w", "start"]
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.data / "db"), "-m", mode,
             "-w", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data, ignore_errors=True)

    def _ctl_run(self, command: list[str]) -> None:
        try:
            subprocess.run([*self.run_as, *command], check=True, capture_output=True)
        except subprocess.CalledProcessError as exc:
            raise ServerUnavailable(f"PostgreSQL did not start: {exc.stderr!r}") from exc


@contextlib.contextmanager
def native_postgres(settings: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh cluster for the duration of the block; yields its URL."""
    with running_postgres(settings) as server:
        yield server.url


@contextlib.contextmanager
def running_postgres(
    settings: tuple[str, ...] = (), host_auth: str = "trust", keep: Path | None = None
) -> Iterator[NativePostgres]:
    """A fresh cluster for the block; with ``keep``, the cluster in that folder (made there
    when it has none), stopped but kept afterwards."""
    server = NativePostgres(settings, host_auth, data=keep)
    try:
        if keep is None or not (keep / "db").exists():
            server.init()
        server.start()
        yield server
    finally:
        if keep is None:
            server.remove()
        else:
            server.stop()


@contextlib.contextmanager
def wasm_timescale(start: Path) -> Iterator[str]:
    """The shared PostgreSQL 17 + TimescaleDB 2.23 WASM server, in memory; yields its URL."""
    if not start.exists():
        raise ServerUnavailable(
            f"no TimescaleDB: {start} is missing; set MOVERS_TEST_TIMESCALE_URL to a "
            "timescale/timescaledb server or put the shared/ folder beside the repository"
        )
    proc = subprocess.Popen([str(start), "0", "memory://"], stdout=subprocess.PIPE, text=True)
    ready: list[str] = []
    reader = threading.Thread(
        target=lambda: ready.append(proc.stdout.readline() if proc.stdout else "")
    )
    reader.start()
    reader.join(timeout=120)
    line = ready[0] if ready else ""
    try:
        if not line.startswith("READY"):
            raise ServerUnavailable(f"the TimescaleDB fixture did not start (said {line!r})")
        yield f"postgresql://postgres@127.0.0.1:{int(line.split()[1])}/postgres"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
