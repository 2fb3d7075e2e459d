"""The model registry on a real broker: models deployed, changed and retired without a
restart, on one node and on two, through a kill -9 and a rebalance, each ending exact."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from river import datasets, linear_model, preprocessing, tree

from tests.integration.conftest import NodeProcess
from tests.integration.kafka_io import consume, produce, run
from tests.integration.test_scale import assert_serves_as, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "registry-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GROUP_ENV = {
    "STREAMLEARN_ADMIN_TOKEN": TOKEN,
    "STREAMLEARN_SNAPSHOT_KEY": "shared-group-key",
    "STREAMLEARN_TOPIC_PARTITIONS": "6",
}
SEED = """
[models.seeded]
task = "binary"
pipeline = "naive_bayes.GaussianNB()"
preprocess = "none"
"""
LINEAR = {
    "task": "binary",
    "pipeline": "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
    "preprocess": "none",
    "snapshot_every": 400,
}
TREE = {**LINEAR, "pipeline": "tree.HoeffdingTreeClassifier()"}


def agrawal(n: int, seed: int) -> list[tuple[dict[str, Any], int]]:
    return list(itertools.islice(datasets.synth.Agrawal(seed=seed), n))


def send(node: NodeProcess, name: str, data: list[tuple[dict[str, Any], int]], start: int = 0,
         batch: int = 10) -> None:  # fmt: skip
    events = [{"event_id": f"{name}-{start + i}", "model": name, "features": x, "label": y}
              for i, (x, y) in enumerate(data)]  # fmt: skip
    values = [orjson.dumps(events[i : i + batch]) for i in range(0, len(events), batch)]
    run(produce(node.bootstrap, node.topic("events"), values, name.encode(),
                **node.client_options))  # fmt: skip


def put(node: NodeProcess, name: str, spec: dict[str, Any], timeout: float = 60) -> Any:
    """PUT the spec, retrying while the group rebalances (503)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = httpx.put(f"{node.url}/models/{name}", json=spec, headers=AUTH, timeout=30)
        except httpx.HTTPError:
            answer = None
        if answer is not None and answer.status_code != 503:
            return answer
        assert time.monotonic() < deadline, answer.text if answer is not None else "no answer"
        time.sleep(0.3)


def delete(node: NodeProcess, name: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.delete(f"{node.url}/models/{name}", headers=AUTH, timeout=30)
        if answer.status_code != 503:
            return answer
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.3)


def assert_exact(node: NodeProcess, name: str, reference: Any,
                 data: list[tuple[dict[str, Any], int]]) -> None:  # fmt: skip
    """The model learned each event once and predicts as River fed the same events."""
    state = node.wait_for(name, "n_learned", len(data), timeout=120)
    assert state["n_duplicates"] == 0
    for x, y in data:
        reference.learn_one(x, y)
    probes = [x for x, _ in agrawal(100, seed=99)]
    assert_serves_as(node, name, reference, probes)


def registry_of(node: NodeProcess, names: list[str]) -> dict[str, Any]:
    """Each model's spec history as ``node`` answers it (``None``: unknown there)."""
    out = {}
    for name in names:
        answer = node.get(f"/models/{name}/spec/history")
        out[name] = answer.json() if answer.status_code == 200 else None
    return out


def test_a_model_is_deployed_changed_and_retired_on_a_running_node(start_node: Any) -> None:
    node = start_node(SEED, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    assert node.get("/models/seeded/spec").json()["who"] == "file"
    created = put(node, "fresh", LINEAR)
    assert created.status_code == 200 and created.json()["change"] == "created", created.text
    data = agrawal(1_200, seed=1)
    send(node, "fresh", data)
    assert_exact(node, "fresh", preprocessing.StandardScaler() | linear_model.LogisticRegression(),
                 data)  # fmt: skip
    assert 'streamlearn_learned_total{model="fresh"} 1200.0' in node.get("/metrics").text

    # A setting applied in place: the estimator goes on where it was.
    changed = put(node, "fresh", {**LINEAR, "rolling_window": 50})
    assert changed.json()["change"] == "in_place"
    assert node.get("/models/fresh").json()["model_version"] == 1
    assert node.get("/models/fresh/metrics").json()["window"] == 50

    # A new pipeline: a new model from here, the old one kept as a snapshot.
    before = {v["version"] for v in node.get("/models/fresh/snapshots").json()}
    rebuilt = put(node, "fresh", TREE)
    assert rebuilt.json()["change"] == "rebuilt" and rebuilt.json()["version"] == 3
    more = agrawal(600, seed=2)
    send(node, "fresh", more, start=len(data))
    assert_exact(node, "fresh", tree.HoeffdingTreeClassifier(), more)
    assert node.get("/models/fresh").json()["model_version"] == 2
    kept = min(v["version"] for v in node.get("/models/fresh/snapshots").json()
               if v["version"] not in before)  # fmt: skip
    # Rolled back to it: its spec is the registry's again, its learned state the model's.
    restored = node.post(f"/models/fresh/snapshots/{kept}/restore", headers=AUTH)
    assert restored.status_code == 200, restored.text
    assert restored.json()["n_learned"] == len(data) and restored.json()["model_version"] == 3
    spec = node.get("/models/fresh/spec").json()
    assert spec["version"] == 4 and spec["spec"]["pipeline"] == LINEAR["pipeline"]

    retired = delete(node, "fresh")
    assert retired.status_code == 200 and retired.json()["change"] == "retired"
    assert [m["name"] for m in node.get("/models").json()] == ["seeded"]
    send(node, "fresh", agrawal(1, seed=3), start=10_000, batch=1)
    letters = run(consume(node.bootstrap, node.topic("dead-letters"), 1, timeout=30,
                          **node.client_options))  # fmt: skip
    assert letters and letters[-1]["error"] == "unknown model 'fresh'"
    assert 'model="fresh"' not in node.get("/metrics").text

    # Restarted with another file: the registry on the topic stays the truth, and says so.
    node.stop()
    other = SEED + "snapshot_every = 5\n" + SEED.replace("seeded", "other")
    (node.workdir / "models.toml").write_text(other)
    node.start()
    assert [m["name"] for m in node.get("/models").json()] == ["seeded"]
    log = node.log.read_text()
    assert "model 'seeded' differs from the registry in snapshot_every" in log
    assert "model 'other' is not in the registry" in log
    history = node.get("/models/seeded/spec/history").json()
    assert [h["version"] for h in history] == [1]


def test_two_nodes_agree_through_a_kill_9_right_after_a_put(start_node: Any) -> None:
    a = start_node(SEED, **GROUP_ENV)
    b = start_node(SEED, join=a, **GROUP_ENV)
    wait_until(lambda: len({m["owner"] for m in a.get("/models").json()}) >= 1, 60, "a group")
    # Through a: relayed to the owner of the partition of "fresh", whichever node that is.
    created = put(a, "fresh", LINEAR)
    assert created.status_code == 200, created.text
    owner = created.headers["x-streamlearn-node"]
    first = agrawal(800, seed=4)
    send(a, "fresh", first)
    wait_until(lambda: a.get("/models/fresh").json()["n_learned"] >= 400, 60, "learning")
    changed = put(a, "fresh", {**LINEAR, "snapshot_every": 300})
    assert changed.json()["change"] == "in_place"
    # Templates are no models of their own: their changes are relayed to the owner too.
    for node in (a, b):
        assert put(node, "tmpl", {**LINEAR, "key_field": "k"}).status_code == 200
        assert delete(node, "tmpl").status_code == 200
    victim, survivor = (a, b) if owner == a.url else (b, a)
    victim.kill()  # right after the PUT: nothing is handed over
    wait_until(lambda: survivor.get("/models/fresh").json()["owner"] == survivor.url, 60,
               "the survivor to hold the model")  # fmt: skip
    rest = agrawal(800, seed=5)
    send(survivor, "fresh", rest, start=len(first))
    assert_exact(survivor, "fresh",
                 preprocessing.StandardScaler() | linear_model.LogisticRegression(),
                 first + rest)  # fmt: skip
    assert survivor.get("/models/fresh/spec").json()["spec"]["snapshot_every"] == 300
    victim.start()
    names = ["seeded", "fresh"]
    wait_until(lambda: registry_of(victim, names) == registry_of(survivor, names), 60,
               "both nodes to agree on the registry")  # fmt: skip
    assert [h["version"] for h in registry_of(victim, names)["fresh"]] == [1, 2]


def test_models_created_and_retired_while_a_node_joins_end_agreed_and_exact(
    start_node: Any,
) -> None:
    a = start_node(SEED, **GROUP_ENV)
    names = [f"m{i}" for i in range(4)]
    joined: list[NodeProcess] = []
    joining = threading.Thread(target=lambda: joined.append(start_node(SEED, join=a, **GROUP_ENV)))
    joining.start()
    for name in names:
        assert put(a, name, LINEAR).status_code == 200
    assert delete(a, "seeded").status_code == 200
    joining.join()
    (b,) = joined
    data = {name: agrawal(500, seed=10 + i) for i, name in enumerate(names)}
    for name, rows in data.items():
        send(b, name, rows)
    for name, rows in data.items():
        reference = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        assert_exact(b, name, reference, rows)
    every = [*names, "seeded"]
    wait_until(lambda: registry_of(a, every) == registry_of(b, every), 60, "agreement")
    assert registry_of(a, every)["seeded"] is None
    listed = {m["name"] for m in b.get("/models").json()}
    assert listed == set(names)


def cli(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**node.env, "STREAMLEARN_API_URL": node.url, "STREAMLEARN_ADMIN_TOKEN": TOKEN}
    return subprocess.run([sys.executable, "-m", "streams.cli", "models", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


def test_models_apply_makes_the_registry_the_file_and_is_idempotent(
    start_node: Any, tmp_path: Path
) -> None:
    node = start_node(SEED, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    wanted = tmp_path / "wanted.toml"
    wanted.write_text(
        SEED + "snapshot_every = 50\n"
        + "".join(f"\n[models.fresh]\n{k} = {orjson.dumps(v).decode()}\n" if k == "task" else
                  f"{k} = {orjson.dumps(v).decode()}\n" for k, v in LINEAR.items())
    )  # fmt: skip
    wanted.write_text(wanted.read_text() + TEMPLATE)
    dry = cli(node, "apply", str(wanted), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "+ fraud (deploy)", "+ fresh (deploy)", "~ seeded: snapshot_every (in place)",
    ]  # fmt: skip
    assert [m["name"] for m in node.get("/models").json()] == ["seeded"]
    applied = cli(node, "apply", str(wanted))
    assert applied.returncode == 0, applied.stderr
    assert "seeded: in_place (v2)" in applied.stdout and "fresh: created (v1)" in applied.stdout
    # A model a template made is not in the file, and stays.
    event = {"event_id": "k1", "model": "fraud", "features": {"merchant": "acme", "x": 1.0},
             "label": True}  # fmt: skip
    assert node.post("/events", json=event).status_code == 202
    wait_until(lambda: node.get("/models/fraud:acme").status_code == 200, 30, "fraud:acme")
    again = cli(node, "apply", str(wanted))
    assert again.returncode == 0 and "nothing to do" in again.stdout, again.stdout
    listed = cli(node, "list").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [
        ["seeded", "v2"], ["fresh", "v1"], ["fraud:acme", "v1"],
    ]  # fmt: skip
    assert cli(node, "delete", "fresh").stdout.strip() == "- fresh (retired at v1)"
    refused = cli(node, "delete", "fresh")
    assert refused.returncode == 2 and "404" in refused.stderr
    unauthorised = subprocess.run(
        [sys.executable, "-m", "streams.cli", "models", "delete", "seeded"],
        env={**node.env, "STREAMLEARN_API_URL": node.url, "STREAMLEARN_ADMIN_TOKEN": "wrong"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert unauthorised.returncode == 2 and "401" in unauthorised.stderr


TEMPLATE = """
[templates.fraud]
key_field = "merchant"
max_models = 3
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
snapshot_every = 300
"""


def test_a_template_makes_a_model_per_key_each_exact_through_a_kill_9(start_node: Any) -> None:
    node = start_node(SEED + TEMPLATE, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    assert node.get("/models/fraud/spec").json()["spec"]["key_field"] == "merchant"
    keys = ["acme", "bolt", "7"]
    data = {key: agrawal(700, seed=20 + i) for i, key in enumerate(keys)}

    def send_keyed(rows: dict[str, list[tuple[dict[str, Any], int]]], start: int) -> None:
        events = [
            {"event_id": f"{key}-{start + i}", "model": "fraud",
             "features": {**x, "merchant": int(key) if key.isdigit() else key}, "label": y}
            for i in range(max(len(r) for r in rows.values()))
            for key, r in rows.items() if i < len(r)
            for x, y in [r[i]]
        ]  # fmt: skip
        values = [orjson.dumps(events[i : i + 10]) for i in range(0, len(events), 10)]
        run(produce(node.bootstrap, node.topic("events"), values, b"fraud",
                    **node.client_options))  # fmt: skip

    send_keyed({key: rows[:400] for key, rows in data.items()}, 0)
    wait_until(lambda: all(node.get(f"/models/fraud:{k}").json()["n_learned"] == 400
                           for k in keys), 90, "each key's model to learn")  # fmt: skip
    history = node.get("/models/fraud:acme/spec/history").json()
    assert [(h["version"], h["who"]) for h in history] == [(1, "template fraud")]
    node.kill()
    node.start()
    send_keyed({key: rows[400:] for key, rows in data.items()} | {"late": agrawal(1, seed=9)}, 400)
    for key, rows in data.items():
        reference = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        assert_exact(node, f"fraud:{key}", reference, rows)
    listed = sorted(m["name"] for m in node.get("/models").json())
    assert listed == ["fraud:7", "fraud:acme", "fraud:bolt", "seeded"]
    letters = run(consume(node.bootstrap, node.topic("dead-letters"), 1, timeout=30,
                          **node.client_options))  # fmt: skip
    assert any("has made max_models = 3 models already" in d["error"] for d in letters), letters
    assert 'streamlearn_learned_total{model="fraud:acme"} 700.0' in node.get("/metrics").text
