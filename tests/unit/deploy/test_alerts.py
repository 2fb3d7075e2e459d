"""deploy/prometheus: the alert rules and the Alertmanager config, checked by Prometheus's own
tools (Debian's prometheus and prometheus-alertmanager, which `make tools` installs), and the
series they read, exported by a node."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from streams.learning.errors import SpecError
from streams.learning.spec import load_specs
from streams.node import build_node
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "streamlearn.json"

MODELS = """
[models.clicks]
task = "binary"
pipeline = "linear_model.LogisticRegression()"
metrics = ["Accuracy", "LogLoss"]
alert_below = { Accuracy = 0.8 }

[models.prices]
task = "regression"
pipeline = "linear_model.LinearRegression()"
"""


def tool(name: str) -> str:
    """The path of one of Prometheus's binaries; a failure, not a skip, when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make tools` installs Debian's prometheus and"
                    " prometheus-alertmanager")  # fmt: skip
    return path


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules_and_the_prometheus_config() -> None:
    out = run(tool("promtool"), "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert f"SUCCESS: {len(rules())} rules found" in out
    # The config names alerts.yml relative to itself: promtool reads it from there too.
    out = run(tool("promtool"), "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert "SUCCESS: 1 rule files found" in out


def test_every_rule_passes_its_promtool_unit_tests() -> None:
    out = run(tool("promtool"), "test", "rules", str(PROMETHEUS / "alerts_test.yml"))
    assert "SUCCESS" in out


def test_every_rule_has_a_severity_a_summary_a_description_and_a_runbook() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)) == 8
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert all(text.strip() for text in annotations.values()), rule["alert"]
        assert "$labels." in annotations["description"], rule["alert"]


def test_every_rule_is_seen_firing_by_a_promtool_test() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert firing == {rule["alert"] for rule in rules()}


def test_amtool_accepts_the_alertmanager_config() -> None:
    out = run(tool("amtool"), "check-config", str(PROMETHEUS / "alertmanager.yml"))
    assert "SUCCESS" in out
    config = yaml.safe_load((PROMETHEUS / "alertmanager.yml").read_text())
    (receiver,) = config["receivers"]
    assert receiver["webhook_configs"][0]["url"].startswith("http")


def exported_names(tmp_path: Path) -> set[str]:
    """The metric names on a node's /metrics (each model live, as if it held every
    partition), without the suffixes of counters and histograms."""
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    node = build_node(Settings(models=models, state_dir=tmp_path / "state"))
    node.lifecycle.live.update(node.registry.models)
    text = generate_latest(node.prometheus).decode()
    return {_family(name) for name in re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)}


def series_read_by(expressions: list[str]) -> set[str]:
    return {_family(n) for e in expressions for n in re.findall(r"\bstreamlearn_[a-z_]+", e)}


def _family(name: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", name)


def test_the_rules_and_the_dashboard_read_only_series_a_node_exports(tmp_path: Path) -> None:
    exported = exported_names(tmp_path)
    assert series_read_by([rule["expr"] for rule in rules()]) <= exported
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    queries += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    assert series_read_by(queries) <= exported


def test_the_node_exports_each_threshold_and_the_pending_cap(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    settings = Settings(models=models, state_dir=tmp_path / "state", pending_max_size=500)
    node = build_node(settings)
    node.lifecycle.live.update({"clicks"})
    text = generate_latest(node.prometheus).decode()
    assert 'streamlearn_model_metric_alert_below{metric="Accuracy",model="clicks"} 0.8' in text
    assert 'streamlearn_pending_labels_max{model="clicks"} 500.0' in text
    assert 'model="prices"' not in text  # only the models live here, so nodes add up


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("alert_below = { F1 = 0.5 }", "models.m: alert_below: F1 is not among"),
        ("alert_below = { LogLoss = 0.5 }", "models.m: alert_below: LogLoss is better when"),
        ('alert_below = { Accuracy = "high" }', "models.m.alert_below.Accuracy"),
        ("alert_below = { Accuracy = nan }", "models.m.alert_below.Accuracy"),
    ],
)
def test_alert_below_names_a_metric_of_the_model_that_is_better_bigger(
    tmp_path: Path, table: str, message: str
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(
        '[models.m]\ntask = "binary"\npipeline = "linear_model.LogisticRegression()"\n'
        f'metrics = ["Accuracy", "LogLoss"]\n{table}\n'
    )
    with pytest.raises(SpecError) as info:
        load_specs(models)
    assert message in str(info.value)
