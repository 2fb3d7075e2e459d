"""The core follows River's protocol exactly: same metrics as progressive_val_score."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, preprocessing, tree

from streams.learning.errors import InvalidEvent
from streams.learning.events import Event
from streams.learning.model import Limits, OnlineModel
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec


def registry_for(**spec: Any) -> ModelRegistry:
    limits = Limits(dedupe_seconds=1e9, pending_seconds=1e9)
    return ModelRegistry({"m": ModelSpec(name="m", **spec)}, limits, max_event_bytes=1_000_000)


def replay(registry: ModelRegistry, rows: Any) -> None:
    for i, (x, y) in enumerate(rows):
        raw = orjson.dumps({"event_id": str(i), "model": "m", "features": x, "label": y})
        registry.handle_events(raw, topic="events", partition=0, offset=i, now=0.0)


@pytest.mark.parametrize(
    ("task", "pipeline", "river_model", "dataset", "names"),
    [
        ("binary", "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
         lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
         datasets.Phishing, ["Accuracy", "F1", "ROCAUC", "LogLoss"]),
        ("multiclass", "tree.HoeffdingTreeClassifier(grace_period=50)",
         lambda: tree.HoeffdingTreeClassifier(grace_period=50),
         datasets.ImageSegments, ["Accuracy", "MacroF1", "MicroF1"]),
        ("regression", "preprocessing.StandardScaler() | linear_model.LinearRegression()",
         lambda: preprocessing.StandardScaler() | linear_model.LinearRegression(),
         datasets.TrumpApproval, ["MAE", "RMSE", "R2"]),
    ],
)  # fmt: skip
def test_metrics_equal_progressive_val_score(
    task: str, pipeline: str, river_model: Any, dataset: Any, names: list[str]
) -> None:
    registry = registry_for(task=task, pipeline=pipeline, preprocess="none", metrics=tuple(names))
    replay(registry, dataset())
    served = registry.get("m").metrics.cumulative()
    for name in names:
        metric = getattr(metrics, name)()
        evaluate.progressive_val_score(dataset(), river_model(), metric)
        assert served[name] == pytest.approx(metric.get(), abs=1e-9), name


def test_rolling_metrics_cover_only_the_window() -> None:
    registry = registry_for(
        task="binary",
        pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()",
        preprocess="none",
        metrics=("Accuracy",),
        rolling_window=100,
    )
    replay(registry, datasets.Phishing())
    reference = metrics.Accuracy()
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for i, (x, y) in enumerate(datasets.Phishing()):
        y_pred = model.predict_one(x)
        if i >= 1150:
            reference.update(y, y_pred)
        model.learn_one(x, y)
    assert registry.get("m").metrics.rolling()["Accuracy"] == pytest.approx(reference.get())


def test_auto_preprocessing_learns_from_mixed_messy_features() -> None:
    registry = registry_for(task="binary", pipeline="linear_model.LogisticRegression()")
    rows = [
        (
            {"age": 30 + i % 7, "city": ["Oslo", "Rome"][i % 2], "vip": i % 3 == 0, "score": None},
            i % 2 == 0,
        )
        for i in range(300)
    ]
    replay(registry, rows)
    model = registry.get("m")
    assert model.n_learned == 300
    assert model.counters.n_missing_values == 300
    assert model.metrics.cumulative()["Accuracy"] > 0.9  # city decides the label
    described = model.pipeline_description()
    assert described["steps"] == ["AutoPreprocessor", "LogisticRegression"]
    assert described["auto"]["categorical"]["features"] == {"city": 2}
    assert described["auto"]["boolean"]["features"] == ["vip"]


def test_labels_of_the_wrong_kind_are_refused_before_learning() -> None:
    spec = ModelSpec(name="r", task="regression", pipeline="linear_model.LinearRegression()")
    model = OnlineModel(spec, Limits())
    for label in ("high", True):
        with pytest.raises(InvalidEvent, match="does not fit 'r', a regression model"):
            model.process(Event("e", "r", {"x": 1.0}, label), now=0.0)
    assert model.n_learned == 0 and model.counters.n_events == 0
    binary = OnlineModel(
        ModelSpec(name="b", task="binary", pipeline="linear_model.LogisticRegression()"),
        Limits(),
    )
    with pytest.raises(InvalidEvent, match="expected true/false"):
        binary.process(Event("e", "b", {"x": 1.0}, "yes"), now=0.0)


def test_events_without_a_label_are_predicted_but_not_learned() -> None:
    registry = registry_for(task="binary", pipeline="linear_model.LogisticRegression()")
    replay(registry, itertools.islice(datasets.Phishing(), 10))
    out = registry.handle_events(
        b'{"event_id": "u", "model": "m", "features": {"x": 1}}',
        topic="events", partition=0, offset=99, now=0.0,
    )  # fmt: skip
    assert len(out.predictions) == 1 and out.predictions[0].event_id == "u"
    assert registry.get("m").n_learned == 10
    assert registry.get("m").counters.n_predicted == 11
