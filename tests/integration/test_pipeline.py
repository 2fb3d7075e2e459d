"""Several models on one node: delayed labels, every task, drift, bounded encoding."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from river import datasets, drift, evaluate, linear_model, metrics, naive_bayes, preprocessing, tree

from streams.replay import replay
from streams.settings import Settings
from tests.integration.conftest import NodeProcess

pytestmark = pytest.mark.integration

K = 20
DRIFTING = "river:synth.ConceptDriftStream(seed=42, position=3000, width=50)"
N_DRIFTING = 8000

MODELS = """
[models.late]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]

[models.segments]
task = "multiclass"
pipeline = "tree.HoeffdingTreeClassifier(grace_period=50)"
preprocess = "none"

[models.trump]
task = "regression"
pipeline = "preprocessing.StandardScaler() | linear_model.LinearRegression()"
preprocess = "none"

[models.drift_alert]
task = "binary"
pipeline = "naive_bayes.GaussianNB()"
preprocess = "none"
metrics = ["Accuracy"]
rolling_window = 500
drift = ["ADWIN()"]

[models.drift_batched]
task = "binary"
pipeline = "naive_bayes.GaussianNB()"
preprocess = "none"
metrics = ["Accuracy"]
rolling_window = 500
drift = ["ADWIN()"]

[models.drift_retrain]
task = "binary"
pipeline = "naive_bayes.GaussianNB()"
preprocess = "none"
metrics = ["Accuracy"]
rolling_window = 500
drift = ["ADWIN()"]
drift_policy = "retrain"

[models.users]
task = "binary"
pipeline = "linear_model.LogisticRegression()"
max_categories = 20
"""


def unique_users(n: int) -> Iterator[tuple[dict[str, Any], bool]]:
    for i in range(n):
        yield {"user": f"user-{i}", "amount": float(i % 50), "new": i % 3 == 0}, i % 50 > 25


@pytest.fixture(scope="module")
def node(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    process = NodeProcess(tmp_path_factory.mktemp("pipeline"), kafka, MODELS)
    process.start()
    settings = Settings(
        kafka_bootstrap_servers=kafka, topic_prefix=process.prefix, topic_partitions=4
    )

    async def feed() -> None:
        # Paced, so that the node keeps up and the two topics interleave about as sent.
        await replay(settings, "river:Phishing", "late", label_delay=K, rate=1000, progress=False)
        await replay(settings, "river:ImageSegments", "segments", progress=False)
        await replay(settings, "river:TrumpApproval", "trump", progress=False)
        for name in ("drift_alert", "drift_retrain"):
            await replay(settings, DRIFTING, name, limit=N_DRIFTING, progress=False)
        await replay(
            settings, DRIFTING, "drift_batched", limit=N_DRIFTING, batch=400, progress=False
        )

    asyncio.run(feed())
    users = tmp_path_factory.mktemp("users") / "users.jsonl"
    users.write_text(
        "\n".join(orjson.dumps({**x, "label": y}).decode() for x, y in unique_users(3000))
    )
    asyncio.run(replay(settings, str(users), "users", progress=False))
    yield process
    process.stop()


def river_score(dataset: Any, model: Any, metric: Any, **kwargs: Any) -> Any:
    evaluate.progressive_val_score(dataset, model, metric, **kwargs)
    return metric


def test_labels_sent_k_events_late_are_close_to_river_delay_k(node: NodeProcess) -> None:
    state = node.wait_for("late", "n_learned", 1250, timeout=90)
    assert state["n_pending_labels"] == 0
    assert state["n_labels_unmatched"] == 0 and state["n_labels_duplicate"] == 0
    served = node.get("/models/late/metrics").json()["cumulative"]
    reference = river_score(
        datasets.Phishing(),
        preprocessing.StandardScaler() | linear_model.LogisticRegression(),
        metrics.Accuracy() + metrics.ROCAUC(),
        delay=K,
    )
    assert abs(served["Accuracy"] - reference[0].get()) < 0.02
    assert abs(served["ROCAUC"] - reference[1].get()) < 0.02
    assert state["label_lag"]["n"] == 1250  # type: ignore[index]


def test_multiclass_and_regression_match_river_exactly(node: NodeProcess) -> None:
    node.wait_for("segments", "n_learned", 2310, timeout=90)
    node.wait_for("trump", "n_learned", 1001, timeout=90)
    segments = node.get("/models/segments/metrics").json()["cumulative"]
    for name in ("Accuracy", "MacroF1", "MicroF1"):
        expected = river_score(
            datasets.ImageSegments(), tree.HoeffdingTreeClassifier(grace_period=50),
            getattr(metrics, name)(),
        ).get()  # fmt: skip
        assert segments[name] == pytest.approx(expected, abs=1e-9), name
    trump = node.get("/models/trump/metrics").json()["cumulative"]
    for name in ("MAE", "RMSE", "R2"):
        expected = river_score(
            datasets.TrumpApproval(),
            preprocessing.StandardScaler() | linear_model.LinearRegression(),
            getattr(metrics, name)(),
        ).get()
        assert trump[name] == pytest.approx(expected, abs=1e-9), name
    prometheus = node.get("/metrics").text
    assert 'streamlearn_model_metric{metric="R2",model="trump",window="rolling"}' in prometheus


def test_drift_fires_where_river_fires_and_retrain_recovers(node: NodeProcess) -> None:
    for name in ("drift_alert", "drift_retrain", "drift_batched"):
        node.wait_for(name, "n_learned", N_DRIFTING, timeout=120)
    model, detector, offline = naive_bayes.GaussianNB(), drift.ADWIN(), []
    stream = datasets.synth.ConceptDriftStream(seed=42, position=3000, width=50)
    for i, (x, y) in enumerate(itertools.islice(stream, N_DRIFTING)):
        detector.update(0.0 if model.predict_one(x) == y else 1.0)
        if detector.drift_detected:
            offline.append(i)
        model.learn_one(x, y)
    alert = node.get("/models/drift_alert/drift").json()
    assert [d["n_learned"] for d in alert["recent"]] == offline
    batched = node.get("/models/drift_batched/drift").json()
    assert [d["n_learned"] for d in batched["recent"]] == offline
    (adwin,) = alert["detectors"]
    assert adwin["name"] == "ADWIN" and adwin["input"] == "error"
    assert adwin["n_detections"] == len(offline) and adwin["last_detection_at"]
    assert {"width", "estimation", "variance"} <= set(adwin["internal"])

    retrain = node.get("/models/drift_retrain").json()
    assert retrain["model_version"] > 1
    history = {
        name: {p["n_learned"]: p["rolling"]["Accuracy"]
               for p in node.get(f"/models/{name}/history").json()["points"]}
        for name in ("drift_alert", "drift_retrain")
    }  # fmt: skip
    after_change = history["drift_retrain"][3500]
    at_end = history["drift_retrain"][N_DRIFTING]
    assert at_end > after_change + 0.03  # recovers after the change
    assert at_end > history["drift_alert"][N_DRIFTING] + 0.03  # and beats not adapting


def test_a_stream_of_unique_strings_stays_within_the_cap(node: NodeProcess) -> None:
    state = node.wait_for("users", "n_learned", 3000, timeout=90)
    auto = state["pipeline"]["auto"]  # type: ignore[index]
    assert auto["categorical"]["features"] == {"user": 20}
    assert auto["numeric"]["features"] == ["amount"]
    assert auto["boolean"]["features"] == ["new"]


def test_drift_topic_carries_each_detection(node: NodeProcess) -> None:
    from tests.integration.kafka_io import consume, run

    node.wait_for("drift_alert", "n_learned", N_DRIFTING, timeout=120)
    expected = node.get("/models/drift_alert/drift").json()["detectors"][0]["n_detections"]
    published = run(
        consume(node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"], node.topic("drift"),
                count=10_000, timeout=5)
    )  # fmt: skip
    mine = [d for d in published if d["model"] == "drift_alert"]
    assert len(mine) == expected
    assert all(d["input"] == "error" and d["detector"] == "ADWIN" for d in mine)


def test_models_are_independent_on_one_node(node: NodeProcess) -> None:
    names = [m["name"] for m in node.get("/models").json()]
    assert names == [
        "late",
        "segments",
        "trump",
        "drift_alert",
        "drift_batched",
        "drift_retrain",
        "users",
    ]
    assert node.get("/models/trump/drift").json()["detectors"] == []
