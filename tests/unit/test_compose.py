"""docker-compose.yml cannot be started here (no Docker engine), so it is read and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def test_services_have_healthchecks_and_wait_for_each_other() -> None:
    services = load("docker-compose.yml")["services"]
    assert {"kafka", "node", "prometheus"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert "healthcheck" in services["kafka"] and "healthcheck" in services["node"]
    assert services["node"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["prometheus"]["depends_on"]["node"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(services["node"]["healthcheck"]["test"])


def test_node_settings_are_real_settings_pointing_at_the_broker() -> None:
    services = load("docker-compose.yml")["services"]
    env = services["node"]["environment"]
    fields = set(Settings.model_fields)
    for key in env:
        assert key.startswith("STREAMLEARN_")
        assert key.removeprefix("STREAMLEARN_").lower() in fields, key
    kafka_env = services["kafka"]["environment"]
    host, port = env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert f"PLAINTEXT://{host}:{port}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["STREAMLEARN_HTTP_HOST"] == "0.0.0.0"
    assert any(p.endswith(f":{env['STREAMLEARN_HTTP_PORT']}") for p in services["node"]["ports"])
    assert env["STREAMLEARN_ADMIN_TOKEN"].startswith("${STREAMLEARN_ADMIN_TOKEN:?")
    assert kafka_env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"


def test_prometheus_scrapes_every_node_on_its_port() -> None:
    env = load("docker-compose.yml")["services"]["node"]["environment"]
    (job,) = load("deploy/prometheus/prometheus.yml")["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["node"]
    assert str(sd["port"]) == env["STREAMLEARN_HTTP_PORT"]


def test_readme_documents_the_compose_path_and_its_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up" in readme
    for key in load("docker-compose.yml")["services"]["node"]["environment"]:
        assert key in readme, key


def test_the_node_service_scales_to_several_replicas() -> None:
    node = load("docker-compose.yml")["services"]["node"]
    env = node["environment"]
    # Replicas must differ only by what Docker gives each: no fixed name, host port or URL.
    assert "container_name" not in node and "hostname" not in node
    assert "STREAMLEARN_ADVERTISED_URL" not in env  # each advertises its container's address
    (ports,) = node["ports"]
    host, container = ports.rsplit(":", 1)
    first, last = (int(p) for p in host.split("-"))
    assert last - first + 1 >= 3 and container == env["STREAMLEARN_HTTP_PORT"]
    # One group with one snapshot key: any replica can restore what another published.
    assert env["STREAMLEARN_SNAPSHOT_KEY"].startswith("${STREAMLEARN_SNAPSHOT_KEY:?")
    assert "STREAMLEARN_STATE_DIR" in env
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up --build --scale node=3" in readme


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """``container path -> file or folder of the repository`` for each bind mount."""
    out = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = ROOT / source
    return out


def test_prometheus_loads_the_alert_rules_and_sends_alerts_to_alertmanager() -> None:
    services = load("docker-compose.yml")["services"]
    config = load("deploy/prometheus/prometheus.yml")
    prometheus = mounts(services["prometheus"])
    assert prometheus["/etc/prometheus/prometheus.yml"].name == "prometheus.yml"
    for rules in config["rule_files"]:  # relative to the config file, in both places
        assert (ROOT / "deploy/prometheus" / rules).is_file()
        assert prometheus[f"/etc/prometheus/{rules}"] == ROOT / "deploy/prometheus" / rules
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (target,) = alertmanagers["static_configs"][0]["targets"]
    host, port = target.split(":")
    alertmanager = services[host]
    assert alertmanager["image"].startswith("prom/alertmanager:")
    assert any(p.endswith(f":{port}") for p in alertmanager["ports"])
    assert mounts(alertmanager)["/etc/alertmanager/alertmanager.yml"].is_file()
    assert "healthcheck" in alertmanager
    assert services["prometheus"]["depends_on"][host]["condition"] == "service_healthy"


def test_grafana_provisions_the_datasource_and_the_dashboards() -> None:
    grafana = mounts(load("docker-compose.yml")["services"]["grafana"])
    sources = grafana["/etc/grafana/provisioning/datasources/streamlearn.yml"]
    (datasource,) = yaml.safe_load(sources.read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load(
        grafana["/etc/grafana/provisioning/dashboards/streamlearn.yml"].read_text()
    )["providers"]
    folder = grafana[provider["options"]["path"]]
    dashboards = [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]
    assert [d["uid"] for d in dashboards] == ["streamlearn"]
    for panel in dashboards[0]["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
