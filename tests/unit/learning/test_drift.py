"""Detectors fire where River's own detectors fire on the same error stream."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from river import datasets, drift, naive_bayes

from streams.learning.errors import SpecError
from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec


def drifting(n: int = 6000) -> Any:
    return itertools.islice(datasets.synth.ConceptDriftStream(seed=42, position=3000, width=50), n)


def run(policy: str, detectors: tuple[str, ...]) -> ModelRegistry:
    spec = ModelSpec(
        name="m", task="binary", pipeline="naive_bayes.GaussianNB()", preprocess="none",
        metrics=("Accuracy",), rolling_window=500, drift=detectors, drift_policy=policy,
    )  # fmt: skip
    reg = ModelRegistry({"m": spec}, Limits(), max_event_bytes=10**6)
    for i, (x, y) in enumerate(drifting()):
        raw = orjson.dumps({"event_id": str(i), "model": "m", "features": x, "label": y})
        reg.handle_events(raw, topic="e", partition=0, offset=i, now=0.0)
    return reg


@pytest.mark.parametrize(
    ("expression", "river_detector"),
    [("ADWIN()", drift.ADWIN), ("PageHinkley()", drift.PageHinkley), ("DDM()", drift.binary.DDM)],
)
def test_error_stream_detector_fires_where_river_does(expression: str, river_detector: Any) -> None:
    reg = run("alert", (expression,))
    served = [d.n_learned for d in reg.get("m").drift.recent]
    model, detector, offline = naive_bayes.GaussianNB(), river_detector(), []
    for i, (x, y) in enumerate(drifting()):
        detector.update(0.0 if model.predict_one(x) == y else 1.0)
        if detector.drift_detected:
            offline.append(i)
        model.learn_one(x, y)
    assert served == offline
    assert served, "the stream drifts: the detector must fire"
    (state,) = reg.get("m").drift.state()
    assert state["input"] == "error" and state["n_detections"] == len(offline)


def test_reset_and_retrain_swap_the_model_and_bump_the_version() -> None:
    for policy in ("reset", "retrain"):
        model = run(policy, ("ADWIN()",)).get("m")
        assert model.counters.n_drifts >= 1
        assert model.model_version == 1 + model.counters.n_drifts
    assert run("alert", ("ADWIN()",)).get("m").model_version == 1


def test_feature_detectors_watch_their_feature() -> None:
    spec = ModelSpec(
        name="m", task="regression", pipeline="linear_model.LinearRegression()",
        drift_features={"x": ("ADWIN()",)},
    )  # fmt: skip
    reg = ModelRegistry({"m": spec}, Limits(), max_event_bytes=10**6)
    for i in range(2000):
        x = 0.0 if i < 1000 else 10.0
        reg.handle_events(
            orjson.dumps({"event_id": str(i), "model": "m", "features": {"x": x}}),
            topic="e", partition=0, offset=i, now=0.0,
        )  # fmt: skip
    (state,) = reg.get("m").drift.state()
    assert state["input"] == "x" and state["n_detections"] >= 1
    assert "width" in state["internal"]


def test_binary_detectors_are_refused_on_regression_errors() -> None:
    with pytest.raises(ValueError, match="DDM\\(\\) takes 0/1 inputs"):
        ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()",
                  drift=("DDM()",))  # fmt: skip
    with pytest.raises(SpecError):
        from streams.learning.drift import parse_drift_detector

        parse_drift_detector("linear_model.LinearRegression()")
