"""The shipped deployments of several collectors: the Kubernetes example validated offline
against Kubernetes' own schemas (strict: an unknown field is an error), its scrape job checked
by promtool, and both it and the compose override wired as the exporter reads them (every
collector a shard of its own, as many shards as collectors)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter.config import load_settings
from tests.support.alerting import run
from tests.support.databases import REPO

KUBERNETES = REPO / "deploy" / "kubernetes"
VERSIONS = ("1.30.0", "1.33.0", "1.37.0")
"""Kubernetes releases the example is valid for (the oldest still supported by the clouds'
managed offerings, a middle one, the newest the schemas know)."""
SECRETS = {"MOVERS_DATABASE_URL": "postgresql://movers@db:5432/movers",
           "MOVERS_DATABASE_PASSWORD": "secret"}  # fmt: skip


def _documents() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all((KUBERNETES / "collectors.yaml").read_text()))
    return {d["kind"]: d for d in docs}


def test_the_kubernetes_example_is_valid_for_kubernetes_schemas() -> None:
    for document in _documents().values():
        for version in VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
    # And an invalid field is caught (the check bites).
    broken = _documents()["StatefulSet"]
    broken["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_each_pod_of_the_statefulset_is_a_shard_of_its_own() -> None:
    docs = _documents()
    stateful, service = docs["StatefulSet"], docs["Service"]
    spec = stateful["spec"]
    (container,) = spec["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MOVERS__CLUSTER__COLLECTOR"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.name"
    )
    assert env["MOVERS__CLUSTER__SHARD__COUNT"]["value"] == str(spec["replicas"])
    # Pods are named <statefulset>-<ordinal>: each reads its own shard, all of them together.
    values = {n: e["value"] for n, e in env.items() if "value" in e}
    shards = set()
    for ordinal in range(spec["replicas"]):
        pod = f"{stateful['metadata']['name']}-{ordinal}"
        settings = load_settings(
            None, environ={**SECRETS, **values, "MOVERS__CLUSTER__COLLECTOR": pod}
        )
        shards.add(settings.cluster.shard_index)
    assert shards == set(range(spec["replicas"]))
    # The headless Service selects the pods and names the port the scrape job keeps.
    assert service["spec"]["clusterIP"] == "None"
    assert spec["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["selector"] == spec["template"]["metadata"]["labels"]
    assert service["spec"]["ports"][0]["name"] == container["ports"][0]["name"] == "metrics"
    probes = (container["readinessProbe"], container["livenessProbe"])
    assert [p["httpGet"]["path"] for p in probes] == ["/readyz", "/healthz"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert str(container["ports"][0]["containerPort"]) in dockerfile  # EXPOSE
    assert "useradd --system --uid 10001" in dockerfile
    assert spec["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def test_the_kubernetes_scrape_job_is_the_movers_job_and_passes_promtool(tmp_path: Path) -> None:
    scrape = KUBERNETES / "prometheus-scrape.yml"
    shipped = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    (job,) = yaml.safe_load(scrape.read_text())["scrape_configs"]
    (movers,) = [j for j in shipped["scrape_configs"] if j["job_name"] == "movers"]
    assert job["job_name"] == "movers"  # what the alert rules select
    for limit in ("sample_limit", "label_limit", "label_value_length_limit"):
        assert job[limit] == movers[limit], limit
    config = tmp_path / "prometheus.yml"
    copied = tmp_path / "prometheus-scrape.yml"
    shutil.copy(scrape, copied)
    config.write_text(yaml.safe_dump({"scrape_config_files": [str(copied)]}))
    result = run("promtool", "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_override_runs_three_collectors_each_a_shard(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    text = (REPO / ".env.example").read_text()
    for key in ("POSTGRES_PASSWORD", "GRAFANA_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        text = re.sub(rf"^{key}=$", f"{key}=test-{key.lower()}", text, flags=re.MULTILINE)
    env_file.write_text(text)
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: run scripts/setup"
    result = subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"),
         "-f", str(REPO / "docker-compose.collectors.yml"), "--env-file", str(env_file),
         "--profile", "demo", "config"],
        capture_output=True, text=True, check=False, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    collectors = sorted(n for n in services if re.fullmatch(r"exporter(-\d+)?", n))
    assert collectors == ["exporter", "exporter-1", "exporter-2"]
    cluster = ("MOVERS__CLUSTER__COLLECTOR", "MOVERS__CLUSTER__SHARD__INDEX")
    base = services["exporter"]
    shards = set()
    for name in collectors:
        service = services[name]
        env = service["environment"]
        assert env["MOVERS__CLUSTER__COLLECTOR"] == name
        # The exporter's service but for its name, shard and the published port.
        same = {k: v for k, v in env.items() if k not in cluster}
        assert same == {k: v for k, v in base["environment"].items() if k not in cluster}, name
        for key in ("image", "volumes", "depends_on", "restart", "build"):
            assert service.get(key) == base.get(key), (name, key)
        settings = load_settings(None, environ={k: str(v) for k, v in env.items()})
        assert settings.cluster.shard.count == len(collectors)
        shards.add(settings.cluster.shard_index)
    assert shards == set(range(len(collectors)))
    assert [n for n in collectors if services[n].get("ports")] == ["exporter"]
    # Prometheus scrapes every collector: the file the override mounts lists the others.
    mounts = {
        v["target"] if isinstance(v, dict) else v.split(":")[1]: v
        for v in services["prometheus"]["volumes"]
    }
    assert "/etc/prometheus/collectors/collectors.yml" in mounts
    shipped = yaml.safe_load((REPO / "prometheus" / "prometheus.yml").read_text())
    (movers,) = [j for j in shipped["scrape_configs"] if j["job_name"] == "movers"]
    assert movers["file_sd_configs"][0]["files"] == ["/etc/prometheus/collectors/*.yml"]
    listed = yaml.safe_load((REPO / "prometheus" / "collectors.yml").read_text())
    targets = {t for group in listed for t in group["targets"]}
    assert targets | set(movers["static_configs"][0]["targets"]) == {
        f"{n}:9464" for n in collectors
    }
