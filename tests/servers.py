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


@contextlib.contextmanager
def native_postgres(settings: tuple[str, ...] = ()) -> Iterator[str]:
    """A fresh cluster on a free port (as the postgres user when root: initdb refuses root);
    yields its URL and removes it afterwards."""
    bindir = pg_bindir()
    if bindir is None:
        raise ServerUnavailable(
            "no PostgreSQL server binaries: run scripts/setup (installs Debian's postgresql-15) "
            "or set MOVERS_TEST_POSTGRES_URL"
        )
    as_root = os.geteuid() == 0
    # pytest's own temp root is 0700: the postgres user could not reach a folder inside it.
    data = Path(tempfile.mkdtemp(prefix="movers-pg-", dir="/tmp"))
    data.chmod(0o755)
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(data, "postgres", "postgres")
    port = free_port()
    options = " ".join(
        [
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c max_connections=200",
            *(f"-c {item}" for item in settings),
        ]
    )
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U",
             "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-o", options,
             "-l", str(data / "server.log"), "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        raise ServerUnavailable(f"PostgreSQL did not start: {exc.stderr!r}") from exc
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop"],
            capture_output=True, check=False,
        )  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)


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
