"""Exactly-once learning across kill -9, clean restarts and a broker restart."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from river import datasets, forest, linear_model, metrics, preprocessing, tree

from streams.broker.local import LocalKafka
from tests.integration.conftest import NodeProcess
from tests.integration.kafka_io import produce

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "test-admin-token"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


def agrawal(n: int, seed: int) -> list[tuple[dict[str, Any], int]]:
    return list(itertools.islice(datasets.synth.Agrawal(seed=seed), n))


def messages(rows: list[tuple[dict[str, Any], int]], model: str, every_dup: int) -> list[bytes]:
    """One message per event; every ``every_dup``-th event is sent a second time, later."""
    out = []
    for i, (x, y) in enumerate(rows):
        out.append(orjson.dumps({"event_id": f"e{i}", "model": model, "features": x, "label": y}))
        if every_dup and i % every_dup == every_dup - 1:
            out.append(out[-every_dup // 2])
    return out


def feed(
    bootstrap: str, topic: str, values: list[bytes], key: bytes, **client_options: Any
) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: asyncio.run(produce(bootstrap, topic, values, key, **client_options))
    )
    thread.start()
    return thread


def learned(node: NodeProcess, name: str) -> int:
    try:
        return int(node.get(f"/models/{name}").json()["n_learned"])
    except Exception:
        return -1


def kill_during_snapshot_write(node: NodeProcess, folder: Path, timeout: float) -> bool:
    """kill -9 the node the moment a snapshot file is being written; False if none came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if folder.is_dir() and any(n.startswith(".incoming-") for n in os.listdir(folder)):
            node.kill()
            return True
        time.sleep(0.0005)
    node.kill()
    return False


ARF = """
[models.arf]
task = "binary"
pipeline = "forest.ARFClassifier(seed=1, n_models=5)"
preprocess = "none"
metrics = ["Accuracy"]
snapshot_every = 1500
challengers = { tree = "tree.HoeffdingTreeClassifier()" }
"""


def test_kill_9_anywhere_loses_nothing_and_learns_nothing_twice(start_node: Any) -> None:
    rows = agrawal(20_000, seed=3)
    node = start_node(ARF, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    values = messages(rows, "arf", every_dup=200)
    sender = feed(bootstrap, node.topic("events"), values, b"arf", **node.client_options)
    folder = node.workdir / "state" / "snapshots" / "arf"

    kills = []
    for threshold in (3_000, 9_000):
        while learned(node, "arf") < threshold:
            time.sleep(0.05)
        if threshold == 3_000:
            node.kill()
            kills.append(("mid-stream", threshold))
        else:
            caught = kill_during_snapshot_write(node, folder, timeout=60)
            kills.append(("during a snapshot write" if caught else "mid-stream", threshold))
        node.start()
    sender.join()
    node.wait_for("arf", "n_learned", len(rows), timeout=240)
    # The last message is a duplicate: it may still be on its way when the last event is
    # learned. Counting more than were sent fails at once, as learning more would have.
    state = node.wait_for("arf", "n_duplicates", len(values) - len(rows), timeout=60)
    assert state["n_learned"] == len(rows)
    assert any(kind == "during a snapshot write" for kind, _ in kills), kills

    reference = forest.ARFClassifier(seed=1, n_models=5)
    for x, y in rows:
        reference.learn_one(x, y)
    probes = [x for x, _ in agrawal(200, seed=99)]
    served = node.post("/models/arf/predict", json={"instances": probes}).json()["predictions"]
    worst = 0.0
    for x, out in zip(probes, served, strict=True):
        expected = reference.predict_proba_one(x)
        for label, p in expected.items():
            worst = max(worst, abs(out["proba"][str(label)] - p))
    assert worst < 1e-9, worst
    # The whole leaderboard is the one an uninterrupted run has: champion and challenger.
    board = {c["name"]: c for c in node.get("/models/arf/candidates").json()["candidates"]}
    for name, model in (("default", forest.ARFClassifier(seed=1, n_models=5)),
                        ("tree", tree.HoeffdingTreeClassifier())):  # fmt: skip
        metric = metrics.Accuracy()
        for x, y in rows:
            y_pred = model.predict_one(x)
            if y_pred is not None:
                metric.update(y, y_pred)
            model.learn_one(x, y)
        assert board[name]["cumulative"]["Accuracy"] == pytest.approx(metric.get(), abs=1e-12)
        assert board[name]["n_learned"] == len(rows)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "kill-test.json").write_text(
        orjson.dumps(
            {"events": len(rows), "messages": len(values), "kills": kills,
             "n_learned": state["n_learned"], "n_duplicates": state["n_duplicates"],
             "max_proba_difference": worst, "probes": len(probes)},
            option=orjson.OPT_INDENT_2,
        ).decode()
    )  # fmt: skip


LINEAR = """
[models.linear]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
snapshot_every = 700
"""


def test_clean_restart_and_broker_restart_are_survived(
    start_node: Any, kafka_broker: LocalKafka
) -> None:
    rows = agrawal(6_000, seed=5)
    node = start_node(LINEAR, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    values = messages(rows, "linear", every_dup=0)
    asyncio.run(produce(bootstrap, node.topic("events"), values[:2_000], b"linear"))
    node.wait_for("linear", "n_learned", 2_000)
    node.stop()  # clean: snapshots on the way out
    snapshots = sorted((node.workdir / "state" / "snapshots" / "linear").glob("v*.snapshot"))
    assert snapshots, "a clean shutdown writes a snapshot"
    node.start()
    assert learned(node, "linear") == 2_000  # restored, nothing replayed twice
    asyncio.run(produce(bootstrap, node.topic("events"), values[2_000:4_000], b"linear"))
    node.wait_for("linear", "n_learned", 4_000)
    kafka_broker.stop()
    kafka_broker.start()
    asyncio.run(produce(bootstrap, node.topic("events"), values[4_000:], b"linear"))
    node.wait_for("linear", "n_learned", 6_000, timeout=120)
    assert node.get("/readyz").status_code == 200

    reference = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in rows:
        reference.learn_one(x, y)
    probe = agrawal(1, seed=7)[0][0]
    served = node.post("/models/linear/predict", json={"features": probe}).json()
    expected = reference.predict_proba_one(probe)[True]
    assert served["proba"]["true"] == pytest.approx(expected, abs=1e-12)


def test_snapshot_list_and_rollback_over_http(start_node: Any) -> None:
    node = start_node(LINEAR, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    values = messages(agrawal(1_000, seed=11), "linear", every_dup=0)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert node.post("/models/linear/snapshots").status_code == 401
    assert (
        node.post("/models/linear/snapshots", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    asyncio.run(produce(bootstrap, node.topic("events"), values[:300], b"linear"))
    node.wait_for("linear", "n_learned", 300)
    first = node.post("/models/linear/snapshots", headers=auth)
    assert first.status_code == 201
    assert first.json()["offsets"] and first.json()["bytes"] > 0
    probe = {"features": agrawal(1, seed=12)[0][0]}
    before = node.post("/models/linear/predict", json=probe).json()
    asyncio.run(produce(bootstrap, node.topic("events"), values[300:], b"linear"))
    node.wait_for("linear", "n_learned", 1_000)
    assert node.post("/models/linear/predict", json=probe).json()["proba"] != before["proba"]
    versions = node.get("/models/linear/snapshots").json()
    assert [v["version"] for v in versions] == sorted(v["version"] for v in versions)
    version = first.json()["version"]
    assert node.post(f"/models/linear/snapshots/{version}/restore").status_code == 401
    rolled = node.post(f"/models/linear/snapshots/{version}/restore", headers=auth).json()
    assert rolled["n_learned"] == 300 and rolled["model_version"] == 2
    after = node.post("/models/linear/predict", json=probe).json()
    assert after["proba"] == before["proba"] and after["model_version"] == 2
    assert node.post("/models/linear/snapshots/999/restore", headers=auth).status_code == 404


def test_admin_routes_refuse_without_a_configured_token(start_node: Any) -> None:
    node = start_node(LINEAR)
    response = node.post("/models/linear/snapshots", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403
    assert "set STREAMLEARN_ADMIN_TOKEN" in response.json()["detail"]
