"""A River model learning from Kafka end to end, exactly as River's own evaluation."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, preprocessing

from tests.integration.kafka_io import consume, produce, run

pytestmark = pytest.mark.integration

PHISHING = """
[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]
"""


def river_reference() -> dict[str, float]:
    metric = metrics.Accuracy() + metrics.ROCAUC()
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    evaluate.progressive_val_score(datasets.Phishing(), model, metric)
    return {type(m).__name__: m.get() for m in metric}


@pytest.mark.parametrize("batch", [1, 100])
def test_phishing_replayed_through_kafka_matches_progressive_val_score(
    start_node: Any, batch: int
) -> None:
    node = start_node(PHISHING)
    replay = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", "river:Phishing", "--model", "phishing",
         "--batch", str(batch), "--quiet"],
        env=node.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert "sent 1250 events" in replay.stdout

    state = node.wait_for("phishing", "n_learned", 1250)
    assert state["n_predicted"] == 1250
    assert state["n_dead_letters"] == 0

    served = node.get("/models/phishing/metrics").json()
    expected = river_reference()
    assert served["cumulative"]["Accuracy"] == pytest.approx(expected["Accuracy"], abs=1e-9)
    assert served["cumulative"]["ROCAUC"] == pytest.approx(expected["ROCAUC"], abs=1e-9)
    assert served["cumulative"]["Accuracy"] == pytest.approx(0.8928, abs=1e-9)

    def count(messages: list[Any]) -> int:
        return sum(len(m) if isinstance(m, list) else 1 for m in messages)

    messages = run(consume(node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
                           node.topic("predictions"), 10**6, timeout=60,
                           until=lambda values: count(values) >= 1250,
                           **node.client_options))  # fmt: skip
    # At most one predictions message per input message: those taken up together share one.
    assert len(messages) <= -(-1250 // batch)
    predictions = [p for m in messages for p in (m if isinstance(m, list) else [m])]
    assert count(messages) == len(predictions) == 1250
    assert {p["model"] for p in predictions} == {"phishing"}
    assert all(set(p["proba"]) == {"true", "false"} for p in predictions)
    assert len({p["event_id"] for p in predictions}) == 1250

    published = run(
        consume(
            node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
            node.topic("metrics"),
            count=10_000,
            timeout=20,
            until=lambda values: any(m["n_learned"] == 1250 for m in values),
            **node.client_options,
        )
    )
    final = published[-1]
    assert final["model"] == "phishing"
    assert final["n_learned"] == 1250
    assert final["cumulative"] == served["cumulative"]
    assert final["window"] == 1000


def test_same_event_twice_is_learned_once(start_node: Any) -> None:
    node = start_node(PHISHING)
    event = {"event_id": "dup-1", "model": "phishing", "features": {"a": 1.0}, "label": True}
    assert node.post("/events", json=event).status_code == 202
    node.wait_for("phishing", "n_learned", 1)
    # Redelivered by a producer straight to Kafka, and again over HTTP in a batch.
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    run(produce(bootstrap, node.topic("events"), [orjson.dumps(event)], key=b"phishing"))
    second = {**event, "event_id": "dup-2"}
    assert node.post("/events", json=[event, second]).json() == {"accepted": 2}
    state = node.wait_for("phishing", "n_learned", 2)
    assert state["n_duplicates"] == 2
    assert state["n_events"] == 4


def test_predict_never_learns(start_node: Any) -> None:
    node = start_node(PHISHING)
    events = [
        {"event_id": str(i), "model": "phishing", "features": {"a": float(i), "b": 1.0 - i},
         "label": i % 2 == 0}
        for i in range(20)
    ]  # fmt: skip
    assert node.post("/events", json=events).status_code == 202
    before = node.wait_for("phishing", "n_learned", 20)
    query = {"instances": [{"a": 3.0, "b": -2.0}, {"a": -1.0, "b": 4.0}]}
    first = node.post("/models/phishing/predict", json=query).json()
    second = node.post("/models/phishing/predict", json=query).json()
    assert first == second
    assert len(first["predictions"]) == 2
    assert abs(sum(first["predictions"][0]["proba"].values()) - 1.0) < 1e-9
    after = node.get("/models/phishing").json()
    for counter in ("n_events", "n_predicted", "n_learned", "n_duplicates"):
        assert after[counter] == before[counter]
    assert node.get("/models/phishing/metrics").json()["n_learned"] == 20


def test_large_batches_taken_together_never_overflow_a_predictions_message(
    start_node: Any,
) -> None:
    node = start_node(PHISHING)
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    rows = list(datasets.Phishing())
    batches = [
        orjson.dumps(
            [{"event_id": f"{b}-{i}", "model": "phishing", "features": x, "label": y}
             for i, (x, y) in enumerate(rows)]
        )
        for b in range(6)
    ]  # fmt: skip
    run(produce(bootstrap, node.topic("events"), batches, key=b"phishing"))
    node.wait_for("phishing", "n_learned", 6 * 1250)
    messages = run(consume(bootstrap, node.topic("predictions"), 10**6, timeout=60,
                           until=lambda values: sum(map(len, values)) >= 6 * 1250))  # fmt: skip
    assert sum(len(m) for m in messages) == 6 * 1250
    assert node.get("/healthz").status_code == 200
    assert node.get("/readyz").status_code == 200
