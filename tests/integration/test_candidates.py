"""Challengers through Kafka: the leaderboard over HTTP, admin promotion, the promotions topic."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from river import datasets, evaluate, metrics, tree

from tests.integration.kafka_io import consume, run

pytestmark = pytest.mark.integration

TOKEN = "candidates-token"
MODELS = """
[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]

[models.phishing.challengers]
tree = "tree.HoeffdingTreeClassifier()"
nb = "naive_bayes.GaussianNB()"
"""


def test_leaderboard_and_admin_promotion(start_node: Any) -> None:
    node = start_node(MODELS, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    replay = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", "river:Phishing", "--model", "phishing",
         "--quiet"],
        env=node.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    node.wait_for("phishing", "n_learned", 1250)
    board = node.get("/models/phishing/candidates").json()
    assert board["champion"] == "default"
    by_name = {c["name"]: c for c in board["candidates"]}
    assert set(by_name) == {"default", "tree", "nb"}
    reference = metrics.Accuracy()
    evaluate.progressive_val_score(datasets.Phishing(), tree.HoeffdingTreeClassifier(), reference)
    assert by_name["tree"]["cumulative"]["Accuracy"] == pytest.approx(reference.get(), abs=1e-9)
    assert 'streamlearn_candidate_metric{candidate="tree"' in node.get("/metrics").text

    assert node.post("/models/phishing/candidates/tree/promote").status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    missing = node.post("/models/phishing/candidates/nobody/promote", headers=auth)
    assert missing.status_code == 404
    promoted = node.post("/models/phishing/candidates/tree/promote", headers=auth).json()
    assert promoted["from"] == "default" and promoted["to"] == "tree"
    assert promoted["snapshot_before"] >= 1
    state = node.get("/models/phishing").json()
    assert state["model_version"] == 2
    board = node.get("/models/phishing/candidates").json()
    assert board["champion"] == "tree"
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    published = run(consume(bootstrap, node.topic("promotions"), 1, timeout=20))
    assert published[0]["to"] == "tree" and published[0]["reason"] == "admin"
    # The old champion's snapshot is there to roll back to.
    rolled = node.post(
        f"/models/phishing/snapshots/{promoted['snapshot_before']}/restore", headers=auth
    ).json()
    assert rolled["model_version"] == 3
    assert node.get("/models/phishing/candidates").json()["champion"] == "default"
