"""The exporter as the Dockerfile builds it (tests/image.py replays its steps into a clean
virtualenv, non-editable, the sources removed): migrate, the demo simulator and one pass of
`movers run`, from the image's WORKDIR with the image's environment and entry point."""

from __future__ import annotations

import re
import subprocess

import psycopg
import pytest
import yaml

from tests.support.databases import Database
from tests.support.image import Image

pytestmark = pytest.mark.db

SIM_URLS = {
    "polymarket gamma": ("polymarket", "gamma_url"),
    "polymarket clob": ("polymarket", "clob_url"),
    "polymarket data": ("polymarket", "data_url"),
    "polymarket websocket": ("polymarket", "ws_url"),
    "kalshi rest": ("kalshi", "rest_url"),
    "kalshi websocket": ("kalshi", "ws_url"),
}


def stop_process(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def start_simulator(
    image: Image, *args: str
) -> tuple[subprocess.Popen[str], dict[str, dict[str, str]]]:
    """`movers sim` from the image; returns the process and the venue URLs it printed."""
    sim = image.popen(["sim", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert sim.stdout is not None
    venues: dict[str, dict[str, str]] = {"polymarket": {}, "kalshi": {}}
    seen = []
    for line in sim.stdout:
        seen.append(line)
        match = re.match(r"^\s+([a-z ]+?)\s+((?:https?|wss?)://\S+)$", line)
        if match and match.group(1) in SIM_URLS:
            venue, setting = SIM_URLS[match.group(1)]
            venues[venue][setting] = match.group(2)
        if sum(len(v) for v in venues.values()) == len(SIM_URLS):
            return sim, venues
    stop_process(sim)
    raise AssertionError(f"the simulator did not start: {''.join(seen)[-3000:]}")


def test_the_image_runs_from_its_workdir_with_only_its_installed_package(
    image: Image, pg: Database
) -> None:
    # Nothing of the checkout is importable: the package runs from the virtualenv.
    located = image.run(
        ["python", "-c", "import exporter; print(exporter.__file__)"], entrypoint=False
    )
    assert "/site-packages/exporter/" in located.stdout, located.stderr
    assert not image.path("exporter").exists()

    env = {"MOVERS_DATABASE_URL": pg.url}
    migrated = image.run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr[-3000:]

    sim, venues = start_simulator(image, "--scenario", "scenarios/demo.yaml", "--port", "0")
    try:
        # The compose file mounts the user's movers.yaml at /etc/movers; the entry point finds it.
        config = image.path("/etc/movers/movers.yaml")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(yaml.safe_dump({"venues": venues, "logging": {"format": "json"}}))
        config.chmod(0o644)
        once = image.run(["run", "--once"], env, timeout=600)
    finally:
        stop_process(sim)
    assert once.returncode == 0, once.stderr[-5000:]
    with psycopg.connect(pg.url) as conn:
        stored = dict(
            conn.execute(
                "SELECT split_part(outcome_id, ':', 1), count(*) FROM snapshots GROUP BY 1"
            ).fetchall()
        )
    assert stored.get("polymarket", 0) > 100, stored
    assert stored.get("kalshi", 0) > 100, stored
