"""A live model: the River estimator with its metrics, counters and dedupe window.

It follows River's protocol exactly: predict, then (when the label is known) score the
prediction made before learning, then ``learn_one``.

Examples
--------
>>> from streams.learning.events import Event
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="binary", preprocess="none",
...                  pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()")
>>> model = OnlineModel(spec, dedupe_size=100, dedupe_seconds=60)
>>> out = model.process(Event("e1", "m", {"x": 1.0}, True), now=0.0)
>>> out["prediction"], model.n_learned
(False, 1)
>>> model.process(Event("e1", "m", {"x": 1.0}, True), now=1.0) is None, model.n_duplicates
(True, 1)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from river import base

from streams.learning.dedupe import DedupeWindow
from streams.learning.errors import InvalidEvent
from streams.learning.events import Event
from streams.learning.metrics import MetricTracker
from streams.learning.pipeline import parse_estimator
from streams.learning.preprocessing import AutoPreprocessor
from streams.learning.spec import ModelSpec


def build_estimator(spec: ModelSpec) -> Any:
    """A fresh River estimator for ``spec``: the pipeline, behind the auto stage if asked."""
    pipeline = parse_estimator(spec.pipeline)
    if spec.preprocess == "auto":
        return AutoPreprocessor(max_categories=spec.max_categories) | pipeline
    return pipeline


class OnlineModel:
    """One model of the node: estimator, progressive validation, counters, dedupe."""

    def __init__(self, spec: ModelSpec, *, dedupe_size: int, dedupe_seconds: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.estimator = build_estimator(spec)
        self.is_classifier = isinstance(self.estimator, base.Classifier)
        self.metrics = MetricTracker(spec.task, spec.metrics, spec.rolling_window)
        self.dedupe = DedupeWindow(dedupe_size, dedupe_seconds)
        self.model_version = 1
        self.n_events = 0
        self.n_predicted = 0
        self.n_learned = 0
        self.n_duplicates = 0
        self.n_dead_letters = 0
        self.n_missing_values = 0
        self.last_event_at: datetime | None = None

    def predict(self, x: dict[str, Any]) -> tuple[Any, dict[Any, float] | None]:
        """The prediction and, for classifiers, the class probabilities. Never learns."""
        if self.is_classifier:
            proba = self.estimator.predict_proba_one(x)
            return (max(proba, key=proba.get) if proba else None), proba
        return self.estimator.predict_one(x), None

    def process(self, event: Event, now: float) -> dict[str, Any] | None:
        """Predict, score and learn one event; ``None`` if it is a duplicate.

        Raises :class:`InvalidEvent` (before touching the model) when the label does not fit
        the task.
        """
        if event.has_label:
            self.check_label(event.label)
        self.n_events += 1
        self.last_event_at = datetime.fromtimestamp(now, tz=UTC)
        if self.dedupe.seen(event.event_id, now):
            self.n_duplicates += 1
            return None
        x = event.features
        self.n_missing_values += event.n_missing
        y_pred, proba = self.predict(x)
        self.n_predicted += 1
        if event.has_label:
            if y_pred is not None:
                self.metrics.update(event.label, y_pred, proba)
            self.estimator.learn_one(x, event.label)
            self.n_learned += 1
        record: dict[str, Any] = {
            "event_id": event.event_id,
            "model": self.name,
            "model_version": self.model_version,
            "prediction": y_pred,
            "ts": self.last_event_at.isoformat(),
        }
        if proba is not None:
            record["proba"] = proba
        return record

    def check_label(self, label: Any) -> None:
        """Refuse a label of the wrong kind for the task, naming what was expected."""
        task = self.spec.task
        if task == "regression":
            ok = isinstance(label, int | float) and not isinstance(label, bool)
            expected = "a number"
        elif task == "binary":
            ok = isinstance(label, bool) or (type(label) is int and label in (0, 1))
            expected = "true/false (or 0/1)"
        else:
            ok = isinstance(label, str | int) and not isinstance(label, float)
            expected = "a class: a string, an integer or a bool"
        if not ok:
            raise InvalidEvent(
                f"label {label!r} does not fit {self.name!r}, a {task} model: expected {expected}",
                "label",
            )

    def state(self) -> dict[str, Any]:
        """The counters and identity of the model, as the API shows them."""
        return {
            "name": self.name,
            "task": self.spec.task,
            "model_version": self.model_version,
            "n_events": self.n_events,
            "n_predicted": self.n_predicted,
            "n_learned": self.n_learned,
            "n_duplicates": self.n_duplicates,
            "n_dead_letters": self.n_dead_letters,
            "n_pending_labels": 0,
            "n_missing_values": self.n_missing_values,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }

    def pipeline_description(self) -> dict[str, Any]:
        """The built pipeline: each step, and what the auto stage does per feature."""
        steps = getattr(self.estimator, "steps", None)
        names = list(steps) if steps else [type(self.estimator).__name__]
        described: dict[str, Any] = {"steps": names, "repr": repr(self.estimator)}
        if steps:
            for step in steps.values():
                if isinstance(step, AutoPreprocessor):
                    described["auto"] = step.describe()
        return described
