"""Poison events through Kafka: each is dead-lettered with its reason, its neighbours are
learned exactly once, and the served metrics are River's on the good events alone, even
with a kill -9 in the middle."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, preprocessing

from tests.integration.kafka_io import consume, produce, run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PHISHING = """
[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]
snapshot_every = 100
"""
#: What a numeric pipeline cannot take: nulls, strings, numeric strings, empty strings.
POISON: tuple[Any, ...] = (None, "abc", "0.25", "", "1e3")


def messages() -> tuple[list[bytes], int]:
    """Phishing with 50 poison events interleaved: the first half one event per message, the
    second half in batches of 40 that mix good and poison events."""
    events: list[dict[str, Any]] = []
    n_poison = 0
    for i, (x, y) in enumerate(datasets.Phishing()):
        events.append({"event_id": f"good-{i}", "model": "phishing", "features": x, "label": y})
        if i % 25 == 3:
            name = sorted(x)[n_poison % len(x)]
            bad = {**x, name: POISON[n_poison % len(POISON)]}
            events.append({"event_id": f"bad-{i}", "model": "phishing", "features": bad,
                           "label": y})  # fmt: skip
            n_poison += 1
    half = len(events) // 2
    out = [orjson.dumps(e) for e in events[:half]]
    out += [orjson.dumps(events[i : i + 40]) for i in range(half, len(events), 40)]
    return out, n_poison


def river_reference() -> dict[str, float]:
    metric = metrics.Accuracy() + metrics.ROCAUC()
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    evaluate.progressive_val_score(datasets.Phishing(), model, metric)
    return {type(m).__name__: m.get() for m in metric}


def check(node: Any, n_poison: int) -> None:
    state = node.wait_for("phishing", "n_learned", 1250, timeout=120)
    assert state["n_dead_letters"] == n_poison
    assert state["n_model_errors"] == 0  # refused before River saw them
    served = node.get("/models/phishing/metrics").json()["cumulative"]
    for name, value in river_reference().items():
        assert served[name] == pytest.approx(value, abs=1e-9), name
    letters = run(consume(node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
                          node.topic("dead-letters"), n_poison, timeout=30))  # fmt: skip
    reasons = {letter["error"] for letter in letters}
    assert len(reasons) >= n_poison  # a kill -9 may dead-letter one twice, never none
    for reason in reasons:
        assert "StandardScaler | LogisticRegression needs a number" in reason, reason
    named = {r.split("features.", 1)[1].split(" is ", 1)[0] for r in reasons}
    assert named <= set(next(iter(datasets.Phishing()))[0]), named


def test_poison_events_are_dead_lettered_and_their_neighbours_learned(start_node: Any) -> None:
    node = start_node(PHISHING)
    values, n_poison = messages()
    run(produce(node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"], node.topic("events"), values,
                b"phishing"))  # fmt: skip
    check(node, n_poison)


def test_poison_with_a_kill_9_in_the_middle(start_node: Any) -> None:
    node = start_node(PHISHING)
    values, n_poison = messages()
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    run(produce(bootstrap, node.topic("events"), values[: len(values) // 3], b"phishing"))
    deadline = time.monotonic() + 60
    while node.get("/models/phishing").json()["n_learned"] < 150:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    node.kill()
    run(produce(bootstrap, node.topic("events"), values[len(values) // 3 :], b"phishing"))
    node.start()
    check(node, n_poison)
