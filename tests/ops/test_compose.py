"""docker-compose.yml validated by docker-compose (Debian's 1.29; no Docker engine needed) and
checked against what the tests run: pinned image versions, secrets from .env, local-only ports,
healthchecks, the demo profile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alerting import REPO, run
from tests.support.servers import running_postgres

ENV_EXAMPLE = REPO / ".env.example"


def _compose(env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: run scripts/setup", pytrace=False)
    return subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"),
         "--env-file", str(env_file), *args],
        capture_output=True, text=True, check=False, timeout=60, cwd=REPO,
    )  # fmt: skip


def _filled_env(folder: Path) -> Path:
    text = ENV_EXAMPLE.read_text()
    for key in ("POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        text = re.sub(rf"^{key}=$", f"{key}=test-{key.lower()}", text, flags=re.MULTILINE)
    path = folder / "env"
    path.write_text(text)
    return path


def _config(folder: Path, *profile: str) -> dict[str, Any]:
    result = _compose(_filled_env(folder), *profile, "config")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def test_the_compose_file_validates_and_refuses_missing_secrets(tmp_path: Path) -> None:
    env = _filled_env(tmp_path)
    for profile in ((), ("--profile", "demo")):
        result = _compose(env, *profile, "config", "-q")
        assert result.returncode == 0, result.stderr
    # .env.example as it is: the passwords have no defaults, and the error names them.
    result = _compose(ENV_EXAMPLE, "config", "-q")
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "GRAFANA" in result.stderr


def _version(tool: str) -> str:
    output = run(tool, "--version").stdout
    match = re.search(r"version (\d+\.\d+\.\d+)", output)
    assert match, output
    return match.group(1)


def test_images_are_pinned_to_the_versions_the_tests_run(tmp_path: Path) -> None:
    services = _config(tmp_path)["services"]
    assert services["prometheus"]["image"] == f"prom/prometheus:v{_version('prometheus')}"
    assert services["alertmanager"]["image"] == f"prom/alertmanager:v{_version('alertmanager')}"
    assert re.fullmatch(r"timescale/timescaledb:2\.23\.\d+-pg17", services["timescaledb"]["image"])
    # The Grafana whose dashboard schema tests/test_grafana.py validates against: the copy in
    # shared/grafana-schemas is Grafana's main branch of 2026-06-16, which became 13.2.
    assert services["grafana"]["image"] == "grafana/grafana:13.2.0"
    for name, service in services.items():
        if name != "exporter":
            assert ":" in service["image"], name
            assert not service["image"].endswith(":latest"), name


def test_ports_listen_locally_and_secrets_come_from_the_environment(tmp_path: Path) -> None:
    services = _config(tmp_path)["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", (name, port)
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "test-grafana_admin_password"
    assert grafana["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    text = (REPO / "docker-compose.yml").read_text()
    assert "GRAFANA_ADMIN_PASSWORD:?" in text  # no default admin password
    assert ".env" in (REPO / ".gitignore").read_text().split()
    for secret in ("POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "DISCORD_MARKETS_WEBHOOK_URL",
                   "SLACK_OPS_WEBHOOK_URL", "KALSHI_PRIVATE_KEY"):  # fmt: skip
        assert re.search(rf"^{secret}=$", ENV_EXAMPLE.read_text(), flags=re.MULTILINE), secret


def test_services_have_healthchecks_and_the_mounts_the_images_expect(tmp_path: Path) -> None:
    services = _config(tmp_path)["services"]
    for name in ("timescaledb", "prometheus", "alertmanager", "grafana"):
        assert services[name]["healthcheck"]["test"], name
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "/readyz" in dockerfile.split("HEALTHCHECK", 1)[1]
    assert re.search(r"^USER movers$", dockerfile, flags=re.MULTILINE)
    assert services["exporter"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    targets = {
        (name, volume["target"] if isinstance(volume, dict) else volume.split(":")[1])
        for name, service in services.items()
        for volume in service.get("volumes", [])
    }
    for expected in [
        ("prometheus", "/etc/prometheus/prometheus.yml"),
        ("prometheus", "/etc/prometheus/rules"),
        ("alertmanager", "/etc/alertmanager"),
        ("exporter", "/etc/alerting"),  # what `movers tune` replays
        ("grafana", "/etc/grafana/provisioning"),
        ("grafana", "/var/lib/grafana/dashboards"),
        ("timescaledb", "/var/lib/postgresql/data"),
    ]:
        assert expected in targets, expected
    # The rule files Prometheus loads are the ones the alerting tests check.
    prometheus = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    alertmanager = yaml.safe_load((REPO / "alertmanager" / "alertmanager.yml").read_text())
    history = next(r for r in alertmanager["receivers"] if r["name"] == "history")
    assert history["webhook_configs"][0]["url"] == "http://exporter:9464/alerts/webhook"
    assert "/run/alertmanager" in services["alertmanager"]["tmpfs"]


def test_the_demo_profile_adds_the_simulator(tmp_path: Path) -> None:
    demo = _config(tmp_path, "--profile", "demo")["services"]
    # `docker compose up` starts the services without a profile; the simulator only with demo.
    assert demo["simulator"]["profiles"] == ["demo"]
    assert [n for n, s in demo.items() if s.get("profiles")] == ["simulator"]
    assert demo["simulator"]["command"][0] == "sim"
    assert "scenarios/demo.yaml" in demo["simulator"]["command"]
    assert demo["exporter"]["environment"]["MOVERS_SIMULATOR"] == "simulator"
    entrypoint = (REPO / "docker" / "entrypoint.sh").read_text()
    assert "MOVERS__VENUES__POLYMARKET__GAMMA_URL" in entrypoint


@pytest.mark.db
def test_the_database_is_healthy_only_once_it_listens_on_tcp(tmp_path: Path) -> None:
    """The image's init-time server listens on its socket only; the exporter must not start
    against it, so the healthcheck asks over TCP (the port is the test cluster's)."""
    test = _config(tmp_path)["services"]["timescaledb"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    # libpq's default socket folder, where the image's init server listens (Debian's
    # postgresql-common makes it; /run may have been emptied since).
    sockets = Path("/var/run/postgresql")
    if not sockets.is_dir() and os.geteuid() == 0:
        sockets.mkdir(mode=0o2775)
        shutil.chown(sockets, "postgres", "postgres")
    socket_dir = "unix_socket_directories='/var/run/postgresql'"
    for settings, healthy in (((socket_dir, "listen_addresses=''"), False), ((socket_dir,), True)):
        with running_postgres(settings) as server:
            env = {"PATH": os.environ["PATH"], "PGPORT": str(server.port)}
            check = subprocess.run(["/bin/sh", "-c", test[1]], env=env, capture_output=True,
                                   check=False, timeout=30)  # fmt: skip
            assert (check.returncode == 0) is healthy, (settings, check.stdout, check.stderr)


def test_outside_the_demo_profile_the_exporter_does_not_wait_for_a_simulator(
    tmp_path: Path,
) -> None:
    """docker/entrypoint.sh with compose's environment (MOVERS_SIMULATOR=simulator) on a network
    where no simulator runs: one name lookup, then `movers run` with the real venues."""
    env = _config(tmp_path)["services"]["exporter"]["environment"]
    stubs = tmp_path / "bin"
    stubs.mkdir()
    calls = tmp_path / "getent-calls"
    (stubs / "getent").write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit 2\n')
    (stubs / "movers").write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "movers-args"}\nenv\n')
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", str(REPO / "docker" / "entrypoint.sh"), "run"],
        env={**{k: str(v) for k, v in env.items()}, "PATH": f"{stubs}:/usr/bin:/bin"},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "movers-args").read_text().split() == ["run"]
    assert calls.read_text().splitlines() == ["hosts simulator"]
    assert "MOVERS__VENUES__" not in result.stdout
    assert "MOVERS__PAIRS__FILE" not in result.stdout  # the demo's pairs file: demo only
