"""compose/: the production stack is consistent (no Docker engine here, so we parse it).

Checks services, pinned images, ports, every AGENTWATCH_* variable against the real settings
model (names *and* values), volumes, secrets, bind mounts, dependencies, and that Prometheus
scrapes the worker service on the metrics port the workers use.
"""

from __future__ import annotations

import base64
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from pipeline.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _interpolate(value: str) -> str:
    """Compose variable substitution with stand-in values: ${X:-default} -> default, ${X:?err} -> x."""

    def sub(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if op in (":-", "-"):
            return arg or ""
        return f"stand-in-{name.lower()}"

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}", sub, value)


def valid_setting_names() -> set[str]:
    """AGENTWATCH_<FIELD> and AGENTWATCH_<SECTION>__<FIELD>, derived from the settings model."""
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"AGENTWATCH_{field.upper()}")
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            for sub in ann.model_fields:
                names.add(f"AGENTWATCH_{field.upper()}__{sub.upper()}")
    return names


def test_required_services(services: dict[str, Any]) -> None:
    assert {"kafka", "topics", "worker", "postgres", "prometheus", "grafana"} <= set(services)


def test_images_are_pinned(services: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, svc in services.items():
        image = svc.get("image")
        assert image, f"{name}: no image"
        repo, _, tag = image.rpartition(":") if "@" not in image else (image, "", "digest")
        assert repo and tag and tag != "latest" and re.search(r"\d", tag), (
            f"{name}: image {image!r} is not pinned"
        )
        if "build" in svc:  # our own image is tagged with the package version
            assert image == f"agentwatch:{version}", name
            dockerfile = (
                COMPOSE_DIR / svc["build"]["context"] / svc["build"]["dockerfile"]
            ).resolve()
            assert dockerfile == COMPOSE_DIR / "Dockerfile" and dockerfile.is_file()
    assert services["kafka"]["image"].startswith("apache/kafka:")  # the official Apache Kafka image


def test_kafka_runs_kraft(services: dict[str, Any]) -> None:
    env = _env(services["kafka"])
    assert "zookeeper" not in str(services).lower()
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert (
        len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    )  # a KRaft cluster id is a UUID
    advertised = dict(x.split("://") for x in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    listeners = dict(x.split("://") for x in env["KAFKA_LISTENERS"].split(","))
    assert set(advertised) <= set(listeners)
    # the host-facing listener is published on the same port it advertises
    ext_port = advertised["EXTERNAL"].rsplit(":", 1)[1]
    published = [p.rsplit(":", 2) for p in services["kafka"]["ports"]]
    assert any(p[-2] == ext_port and p[-1] == ext_port for p in published)
    # every service talking to Kafka uses the internal listener
    internal = advertised["INTERNAL"]
    for name in ("topics", "worker"):
        assert _env(services[name])["AGENTWATCH_BROKER"] == internal


def test_jobs_and_workers(services: dict[str, Any]) -> None:
    assert services["topics"]["command"] == ["topics", "create"]  # entrypoint is `agentwatch`
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["topics"]["restart"] == "no"
    worker = services["worker"]
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "container_name" not in worker  # a fixed name would make --scale impossible
    dockerfile = (COMPOSE_DIR / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["agentwatch"]' in dockerfile and "USER agentwatch" in dockerfile


def test_every_agentwatch_variable_is_a_real_setting_with_a_valid_value(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    valid = valid_setting_names()
    assert "AGENTWATCH_WORKER__METRICS_PORT" in valid and "AGENTWATCH_BROKER" in valid
    seen = 0
    for name, svc in services.items():
        env = {k: _interpolate(v) for k, v in _env(svc).items() if k.startswith("AGENTWATCH_")}
        unknown = sorted(set(env) - valid)
        assert not unknown, f"{name}: not settings: {unknown}"
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        if env:
            seen += 1
            settings = load_settings()  # raises ConfigError on any bad value
            assert settings.broker == "kafka:9092"
        for k in env:
            monkeypatch.delenv(k)
    assert seen >= 2


def test_incident_store_points_at_the_postgres_service(services: dict[str, Any]) -> None:
    url = _env(services["worker"])["AGENTWATCH_INCIDENTS__STORE_URL"]
    pg = _env(services["postgres"])
    assert url.startswith("postgresql://")
    user_host = url.split("://", 1)[1]
    assert user_host.startswith(pg["POSTGRES_USER"] + ":")
    assert user_host.endswith(f"@postgres:5432/{pg['POSTGRES_DB']}")
    assert (
        "${POSTGRES_PASSWORD" in url and "${POSTGRES_PASSWORD" in pg["POSTGRES_PASSWORD"]
    )  # no password in git


def test_ports_are_loopback_and_unique(services: dict[str, Any]) -> None:
    host_ports = []
    for name, svc in services.items():
        for spec in svc.get("ports", []):
            ip, host, container = str(spec).rsplit(":", 2)
            assert ip == "127.0.0.1", f"{name}: {spec} is published on every interface"
            assert 0 < int(host) < 65536 and 0 < int(container) < 65536
            host_ports.append(int(host))
    assert len(host_ports) == len(set(host_ports))
    assert {9090, 3000} <= set(host_ports)


def test_volumes_secrets_and_bind_mounts(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, svc in services.items():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).exists(), f"{name}: bind mount {source} is missing"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
        for secret in svc.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: secret {secret} is not declared"
    assert used == declared, f"declared but unused: {declared - used}"
    key_path = _env(services["worker"])["AGENTWATCH_ENFORCEMENT__SIGNING_KEY_PATH"]
    assert key_path == "/run/secrets/agentwatch_signing_key"
    ignore = (COMPOSE_DIR / "secrets" / ".gitignore").read_text()
    assert "*" in ignore.split()  # the key file itself is never committed


def test_every_depends_on_names_a_service(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        deps = svc.get("depends_on") or []
        for dep in deps if isinstance(deps, list) else deps.keys():
            assert dep in services, f"{name} depends on unknown {dep}"


def test_prometheus_scrapes_the_workers_metrics_port(
    services: dict[str, Any], clean_env: None
) -> None:
    prom = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    worker_env = _env(services["worker"])
    port = int(worker_env.get("AGENTWATCH_WORKER__METRICS_PORT", Settings().worker.metrics_port))
    assert port == Settings().worker.metrics_port == 9465
    assert str(port) in services["worker"]["expose"]
    targets = []
    for job in prom["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets += [(n, sd["port"]) for n in sd["names"]]
        for sc in job.get("static_configs", []):
            targets += [tuple(t.rsplit(":", 1)) for t in sc["targets"]]
    worker_services = {n for n, s in services.items() if s.get("command") == ["worker"]}
    assert targets and {(str(n), int(p)) for n, p in targets} == {
        (w, port) for w in worker_services
    }


def test_grafana_provisioning(services: dict[str, Any]) -> None:
    prov = COMPOSE_DIR / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yml").read_text())["datasources"][0]
    prom_port = services["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert ds["url"] == f"http://prometheus:{prom_port}" and ds["uid"] == "prometheus"
    provider = yaml.safe_load((prov / "dashboards" / "agentwatch.yml").read_text())["providers"][0]
    mounts = dict(
        v.split(":")[:2][::-1] for v in services["grafana"]["volumes"] if v.startswith(".")
    )
    assert provider["options"]["path"] in mounts
    assert (COMPOSE_DIR / mounts[provider["options"]["path"]] / "agentwatch.json").is_file()
    home = _env(services["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == provider["options"]["path"] + "/agentwatch.json"
