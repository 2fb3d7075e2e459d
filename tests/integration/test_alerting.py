"""Alerting and the Grafana dashboard against the real thing: Debian's Prometheus scrapes a
real node with the rules of deploy/prometheus/alerts.yml, a drifting stream is replayed, and
the drift alert reaches a webhook through Debian's Alertmanager; then every query of
deploy/grafana/dashboards/streamlearn.json runs on that Prometheus and returns series."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from streams.broker.local import LocalKafka
from streams.replay import replay
from streams.settings import Settings
from tests.integration.conftest import NodeFactory, NodeProcess, free_port, terminate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "streamlearn.json"

# ADWIN on GaussianNB's errors fires once, at event 575 of this stream (River, offline).
DRIFTING = "river:synth.ConceptDriftStream(seed=42, position=500, width=50)"
N = 1500
MODELS = """
[models.drifting]
task = "binary"
pipeline = "naive_bayes.GaussianNB()"
preprocess = "none"
metrics = ["Accuracy"]
rolling_window = 200
drift = ["ADWIN()"]
alert_below = { Accuracy = 0.6 }
"""
#: What the dashboard's variables stand for here (Grafana fills them in itself).
RATE_INTERVAL = "10s"  # Grafana's $__rate_interval: at least 4 scrape intervals (1 s here)

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something other than ``None``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout} s: {what}")


class Webhook:
    """An Alertmanager webhook receiver: keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        payloads = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                payloads.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alerts(self) -> list[dict[str, Any]]:
        return [alert for payload in list(self.payloads) for alert in payload["alerts"]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """One of Prometheus's binaries on a free port, with its own data directory and log."""

    def __init__(self, binary: str, workdir: Path, *args: str) -> None:
        path = shutil.which(binary)
        if path is None:
            pytest.fail(f"{binary} is missing: `make tools` installs Debian's prometheus and"
                        " prometheus-alertmanager")  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{binary}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [path, *args, f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
        eventually(self._ready, 60, f"{binary} ready:\n{self.tail()}")

    def _ready(self) -> bool | None:
        if self.process.poll() is not None:
            raise AssertionError(f"exited early:\n{self.tail()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200 or None
        except httpx.HTTPError:
            return None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        terminate(self.process)


def alertmanager_config(webhook: str) -> dict[str, Any]:
    """deploy/prometheus/alertmanager.yml, its receivers pointed at ``webhook`` and its
    groups sent at once."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", ()):
            hook["url"] = webhook
    routes = [config["route"]]
    while routes:
        route = routes.pop()
        route.update(group_wait="1s", group_interval="1s")
        routes.extend(route.get("routes", ()))
    return config


def prometheus_config(node: NodeProcess, alertmanager: str) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its real rules, every second, scraping ``node``
    instead of compose's DNS names and alerting ``alertmanager``."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    config["alerting"]["alertmanagers"] = [{"static_configs": [{"targets": [alertmanager]}]}]
    (job,) = config["scrape_configs"]
    del job["dns_sd_configs"]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{node.port}"]}]
    return config


@dataclass
class Stack:
    node: NodeProcess
    prometheus: Daemon
    webhook: Webhook
    started: float

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's series."""
        return self._api("query", {"query": promql})

    def query_range(self, promql: str, step: str = "1s") -> list[dict[str, Any]]:
        """A range query's series since the stack started, as a Grafana panel asks for."""
        window = {"start": self.started, "end": time.time(), "step": step}
        return self._api("query_range", {"query": promql, **window})

    def _api(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.prometheus.url}/api/v1/{path}", params=params, timeout=30)
        body = answer.json()
        assert body["status"] == "success", (params, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def browse(node: NodeProcess) -> None:
    """A few HTTP requests, so that the latency histogram has observations."""
    for _ in range(5):
        node.post("/models/drifting/predict", json={"features": {"0": 0.1, "1": 0.7, "2": 0.3}})
        node.get("/models/drifting")
        node.get("/models/drifting/metrics")
        node.get("/no/such/route")


@pytest.fixture(scope="module")
def stack(kafka_broker: LocalKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A node scraped every second by a real Prometheus with the real rules, alerting a real
    Alertmanager that posts to a webhook here; the drifting stream is replayed once the
    node's drift counter has been scraped at 0."""
    workdir = tmp_path_factory.mktemp("alerting")
    nodes = NodeFactory(kafka_broker, workdir / "nodes")
    started = time.time()
    webhook = Webhook()
    daemons: list[Daemon] = []
    try:
        node = nodes(MODELS)
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(alertmanager_config(webhook.url)))
        alertmanager = Daemon(
            "prometheus-alertmanager", workdir,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'alertmanager-data'}",
            "--cluster.listen-address=",  # one instance: no gossip port
        )  # fmt: skip
        daemons.append(alertmanager)
        config = prometheus_config(node, f"127.0.0.1:{alertmanager.port}")
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus = Daemon(
            "prometheus", workdir,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
        )  # fmt: skip
        daemons.append(prometheus)
        up = Stack(node, prometheus, webhook, started)
        eventually(
            lambda: up.query('streamlearn_drifts_total{model="drifting"} == 0') or None,
            60, "Prometheus scraping the node's drift counter at 0",
        )  # fmt: skip
        browse(node)
        settings = Settings(kafka_bootstrap_servers=node.bootstrap, topic_prefix=node.prefix)
        asyncio.run(replay(settings, DRIFTING, "drifting", limit=N, progress=False))
        node.wait_for("drifting", "n_learned", N, timeout=90)
        assert node.get("/models/drifting").json()["n_drifts"] >= 1
        browse(node)
        yield up
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        webhook.stop()
        nodes.stop_all()


def test_the_drift_alert_reaches_the_webhook_through_alertmanager(stack: Stack) -> None:
    def drift_alert() -> dict[str, Any] | None:
        return next(
            (a for a in stack.webhook.alerts()
             if a["labels"]["alertname"] == "StreamlearnDriftDetected" and a["status"] == "firing"),
            None,
        )  # fmt: skip

    alert = eventually(drift_alert, 120, "the drift alert at the webhook")
    assert alert["labels"]["model"] == "drifting"
    assert alert["labels"]["severity"] == "warning"
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook"}
    assert "drifting" in annotations["summary"] and "drifting" in annotations["runbook"]
    names = {a["labels"]["alertname"] for a in stack.webhook.alerts()}
    assert names == {"StreamlearnDriftDetected"}, "only the drift should alert here"


def dashboard_queries() -> list[tuple[str, dict[str, Any]]]:
    """``(where, target)`` for every query of the dashboard: panels and annotations."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        (f"panel {panel['title']!r} {target['refId']}", target)
        for panel in dashboard["panels"]
        for target in panel.get("targets", ())
    ]
    queries += [
        (f"annotation {a['name']!r}", a) for a in dashboard["annotations"]["list"] if "expr" in a
    ]
    return queries


def substitute(promql: str, range_seconds: int) -> str:
    """The query as Grafana sends it: every model, and its interval variables."""
    for variable, value in (
        ("model", ".*"),
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", "1s"),
        ("__range", f"{range_seconds}s"),
    ):
        promql = promql.replace(f"${{{variable}}}", value).replace(f"${variable}", value)
    assert "$" not in promql, promql
    return promql


def test_every_dashboard_query_returns_series(stack: Stack) -> None:
    eventually(
        lambda: stack.query('ALERTS{alertname="StreamlearnDriftDetected"}') or None,
        120, "the drift alert in Prometheus",
    )  # fmt: skip
    time.sleep(2)  # a scrape and an evaluation after the last requests
    range_seconds = int(time.time() - stack.started) + 1
    empty = []
    for where, target in dashboard_queries():
        promql = substitute(target["expr"], range_seconds)
        series = stack.query(promql) if target.get("instant") else stack.query_range(promql)
        if not series:
            empty.append(f"{where}: {promql}")
            continue
        # Each label the legend names is on every series.
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
            assert all(label in s["metric"] for s in series), (where, label, series[:2])
    assert not empty, "queries without series:\n" + "\n".join(empty)
    # The $model variable's query (label_values(streamlearn_model_owned, model)).
    values = httpx.get(
        f"{stack.prometheus.url}/api/v1/label/model/values",
        params={"match[]": "streamlearn_model_owned"}, timeout=10,
    ).json()["data"]  # fmt: skip
    assert values == ["drifting"]
