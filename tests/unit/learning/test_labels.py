"""Labels that arrive later: River's delay=k exactly, and nothing dropped silently."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, preprocessing

from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec

PIPELINE = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"


def registry(limits: Limits | None = None) -> ModelRegistry:
    spec = ModelSpec(
        name="m",
        task="binary",
        pipeline=PIPELINE,
        preprocess="none",
        metrics=("Accuracy", "ROCAUC"),
    )
    return ModelRegistry({"m": spec}, limits or Limits(pending_seconds=1e9), max_event_bytes=10**6)


def event(reg: ModelRegistry, event_id: str, x: dict[str, Any], now: float = 0.0) -> None:
    raw = orjson.dumps({"event_id": event_id, "model": "m", "features": x})
    reg.handle_events(raw, topic="e", partition=0, offset=0, now=now)


def label(reg: ModelRegistry, event_id: str, y: Any, now: float = 0.0) -> None:
    raw = orjson.dumps({"event_id": event_id, "model": "m", "label": y})
    reg.handle_labels(raw, topic="l", partition=0, offset=0, now=now)


@pytest.mark.parametrize("k", [1, 10, 100])
def test_labels_k_events_late_equal_river_delay_k(k: int) -> None:
    reg = registry()
    rows = list(datasets.Phishing())
    for j, (x, _) in enumerate(rows):
        if j >= k:
            label(reg, str(j - k), rows[j - k][1])
        event(reg, str(j), x)
    for j in range(len(rows) - k, len(rows)):
        label(reg, str(j), rows[j][1])
    metric = metrics.Accuracy() + metrics.ROCAUC()
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    evaluate.progressive_val_score(datasets.Phishing(), model, metric, delay=k)
    served = reg.get("m").metrics.cumulative()
    assert served["Accuracy"] == pytest.approx(metric[0].get(), abs=1e-12)
    assert served["ROCAUC"] == pytest.approx(metric[1].get(), abs=1e-12)
    state = reg.get("m").state()
    assert state["n_learned"] == 1250 and state["n_pending_labels"] == 0
    # k - 1 events come between an event and its label, fewer for the tail sent at the end.
    lags = [min(k - 1, len(rows) - (i + 1)) for i in range(len(rows))]
    assert state["label_lag"]["mean_events"] == pytest.approx(sum(lags) / len(lags))


def test_expired_unmatched_and_duplicate_labels_are_counted() -> None:
    reg = registry(Limits(pending_size=3, pending_seconds=10))
    for i in range(5):  # two are evicted by the size cap
        event(reg, str(i), {"a": float(i)}, now=0.0)
    model = reg.get("m")
    assert model.n_pending_labels == 3 and model.counters.n_pending_expired == 2
    label(reg, "4", True, now=1.0)
    label(reg, "4", True, now=2.0)  # a second label for the same event
    assert model.n_learned == 1 and model.counters.n_labels_duplicate == 1
    label(reg, "3", False, now=20.0)  # past the TTL: expired, not learned
    assert model.n_learned == 1 and model.counters.n_pending_expired == 4
    assert model.n_pending_labels == 0


def test_a_label_that_overtakes_its_event_waits_for_it_or_is_counted_unmatched() -> None:
    reg = registry(Limits(pending_size=2, pending_seconds=10))
    model = reg.get("m")
    label(reg, "early", True, now=0.0)
    assert model.n_learned == 0 and model.state()["n_labels_waiting"] == 1
    event(reg, "early", {"a": 1.0}, now=1.0)
    assert model.n_learned == 1 and model.n_pending_labels == 0
    for i in range(3):  # never-seen events: the cap of 2 pushes one out, counted
        label(reg, f"ghost{i}", False, now=2.0)
    assert model.counters.n_labels_unmatched == 1
    label(reg, "ghost3", False, now=30.0)  # the older ones have outlived the TTL
    assert model.counters.n_labels_unmatched == 3
    assert model.state()["n_labels_waiting"] == 1


def test_a_wrong_label_is_a_dead_letter() -> None:
    reg = registry()
    event(reg, "e", {"a": 1.0})
    out = reg.handle_labels(
        b'[{"event_id": "e", "model": "m", "label": 2.5}, {"event_id": "x", "model": "m"}]',
        topic="l", partition=0, offset=7, now=0.0,
    )  # fmt: skip
    errors = [d.error for d in out.dead_letters]
    assert "label 2.5 does not fit 'm', a binary model" in errors[0]
    assert "[1].label must be a bool, number or string, got nothing" in errors[1]
    assert reg.get("m").counters.n_dead_letters == 2
