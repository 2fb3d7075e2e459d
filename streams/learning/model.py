"""A live model, and River's progressive validation written in one place.

One event goes through :meth:`OnlineModel.process` in River's order: check its features
against what the pipeline takes, skip it if its ``event_id`` was seen, predict (the champion
serves, every challenger predicts in the shadow), then, once the label is known (inline,
earlier or later from the labels topic), score the prediction made before learning, feed the
drift detectors, react to them, and ``learn_one`` on the features as they were at prediction
time. The parts live in their own modules: the feature checks (:mod:`.guard`), the label join
(:mod:`.labels`), the race of candidates (:mod:`.race`), the drift policy
(:mod:`.drift_policy`) and the counters (:mod:`.counters`).

Examples
--------
>>> from streams.learning.events import NO_LABEL, Event, Label
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="binary", preprocess="none",
...                  pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()")
>>> model = OnlineModel(spec, Limits())
>>> model.process(Event("e1", "m", {"x": 1.0}, True), now=0.0).record.prediction, model.n_learned
(False, 1)
>>> model.process(Event("e1", "m", {"x": 1.0}, True), now=1.0).record, model.counters.n_duplicates
(None, 1)
>>> _ = model.process(Event("e2", "m", {"x": 2.0}), now=2.0)
>>> model.n_pending_labels, model.process_label(Label("e2", "m", True), now=3.0).learned
(1, True)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from streams.learning.build import build_estimator, check_label, describe_pipeline
from streams.learning.candidates import Candidate, predict_with
from streams.learning.counters import Counters
from streams.learning.dedupe import DedupeWindow
from streams.learning.drift import Detection, DriftMonitor
from streams.learning.drift_policy import DriftPolicy
from streams.learning.errors import InvalidEvent
from streams.learning.events import NO_LABEL, Event, Label, finite_features
from streams.learning.guard import FeatureGuard, probe
from streams.learning.labels import LabelJoin
from streams.learning.metrics import MetricTracker
from streams.learning.pending import Pending
from streams.learning.race import Race
from streams.learning.records import Prediction, Promotion
from streams.learning.spec import ModelSpec
from streams.learning.state import SnapshotState

__all__ = ["Limits", "OnlineModel", "Step", "build_estimator"]


#: Label types that always fit a task, checked by their exact type.
_LABEL_TYPES: dict[str, frozenset[type]] = {
    "binary": frozenset({bool}),
    "multiclass": frozenset({str, int, bool}),
    "regression": frozenset({float, int}),
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what a model remembers: the dedupe window and the pending-label store."""

    dedupe_size: int = 100_000
    dedupe_seconds: float = 86_400.0
    pending_size: int = 100_000
    pending_seconds: float = 3_600.0


@dataclass(slots=True)
class Step:
    """What one event or label did: the prediction record to publish, drift detections and
    promotions."""

    record: Prediction | None = None
    detections: list[Detection] = field(default_factory=list)
    promotions: list[Promotion] = field(default_factory=list)
    learned: bool = False


class OnlineModel(SnapshotState):
    """One model of the node: a race of candidates, validated progressively."""

    def __init__(self, spec: ModelSpec, limits: Limits) -> None:
        self.spec = spec
        self.name = spec.name
        champion = Candidate("default", spec.pipeline, build_estimator(spec), self._tracker())
        self.race = Race(spec.name, champion, [
            Candidate(name, expression, build_estimator(spec, expression, params), self._tracker())
            for name, (expression, params) in spec.candidate_pipelines().items()
        ])  # fmt: skip
        self.drift = DriftMonitor(spec.drift, spec.drift_features, spec.task)
        self.policy = DriftPolicy(spec.drift_policy)
        self.dedupe = DedupeWindow(limits.dedupe_size, limits.dedupe_seconds)
        self.labels = LabelJoin(limits.pending_size, limits.pending_seconds,
                                limits.dedupe_size, limits.dedupe_seconds)  # fmt: skip
        self.guard = FeatureGuard(probe(spec), spec.max_features)
        self.counters = Counters()
        self.history: deque[dict[str, Any]] = deque(maxlen=500)
        self._history_every = max(1, spec.rolling_window // 20)
        self.model_version = 1
        self.last_event_at: datetime | None = None
        self._now = -1.0
        self._ts: str | None = None
        # Labels of these exact types always fit the task (binary: ints 0 and 1 too); others
        # go through check_label.
        self._label_types = _LABEL_TYPES[spec.task]
        self._binary = spec.task == "binary"
        #: Next offset to read per ``topic:partition``, as of the snapshot this model came from.
        self.offsets: dict[str, int] = {}
        self.n_learned_at_snapshot = 0

    def _tracker(self) -> MetricTracker:
        return MetricTracker(self.spec.task, self.spec.metrics, self.spec.rolling_window)

    def predict(self, x: dict[str, Any]) -> tuple[Any, dict[Any, float] | None]:
        """The prediction and, for classifiers, the class probabilities. Never learns, and
        never changes the model: features it has never been given are left out.

        Raises :class:`InvalidEvent` for a value the model cannot take, by the rules of the
        events topic (non-finite numbers are missing values).
        """
        known = self.guard.known(finite_features(x))
        champion = self.race.champion
        try:
            return predict_with(champion.estimator, champion.is_classifier, known)
        except Exception as exc:  # River raised: the request, not the node, is at fault
            raise InvalidEvent(
                f"{self.guard.capabilities.name} could not predict from these features:"
                f" {type(exc).__name__}: {exc}",
                "features",
                self.name,
            ) from None

    def process(self, event: Event, now: float) -> Step:
        """Predict one event; score and learn it if labelled, else park it until its label.

        Raises :class:`InvalidEvent` (before touching the model) when the label does not fit
        the task or a feature does not fit the pipeline.
        """
        label = event.label
        kind = type(label)
        if kind not in self._label_types and label is not NO_LABEL:
            if not (kind is int and self._binary and (label == 0 or label == 1)):
                self.check_label(label)
        x, dropped = self.guard.admit(event.features)
        # The event keeps the features as the model took them, and how many names were left
        # out: a step taken again (see journal.py) then holds and counts the same.
        event.features = x
        event.n_dropped += dropped
        counters = self.counters
        counters.n_features_dropped += event.n_dropped
        counters.n_events += 1
        if now != self._now:  # the events of one message share their time: format it once
            self._now = now
            self.last_event_at = datetime.fromtimestamp(now, tz=UTC)
            self._ts = self.last_event_at.isoformat()
        if self.dedupe.seen(event.event_id, now):
            counters.n_duplicates += 1
            return Step()
        counters.n_missing_values += event.n_missing
        champion = self.race.champion
        y_pred, proba = predict_with(champion.estimator, champion.is_classifier, x)
        counters.n_predicted += 1
        step = Step(record=Prediction(event.event_id, self.name, self.model_version, y_pred,
                                      self._ts, proba))  # fmt: skip
        shadow = self.race.shadow(x) if self.race.challengers else None
        if self.drift.watches_features:
            step.detections += self.drift.update_features(x, counters.n_learned, now)
        if label is NO_LABEL:
            label = self.labels.early_label(event.event_id, now, counters)
        if label is not NO_LABEL:
            self._learn(x, label, y_pred, proba, step, shadow, now)
        else:
            pending = Pending(x, y_pred, proba, now, counters.n_events, shadow)
            self.labels.park(event.event_id, pending, now, counters)
        return step

    def process_label(self, label: Label, now: float) -> Step:
        """Complete a parked prediction: score it, then learn from its stored features."""
        self.check_label(label.label)
        step = Step()
        pending = self.labels.match(label, now, self.counters.n_events, self.counters)
        if pending is not None:
            self._learn(pending.x, label.label, pending.y_pred, pending.proba, step,
                        pending.challengers, now)  # fmt: skip
        return step

    def _learn(
        self, x: dict[str, Any], y: Any, y_pred: Any, proba: Any, step: Step,
        shadow: list[tuple[Any, Any]] | None, now: float,
    ) -> None:  # fmt: skip
        """Score the prediction made before learning, watch the errors, then learn."""
        race, counters = self.race, self.counters
        hand_over = False
        if y_pred is not None:
            race.champion.metrics.update(y, y_pred, proba)
        if self.drift.watched:
            if self.spec.task == "regression":
                error = abs(y - y_pred) if y_pred is not None else 0.0
            else:
                error = 0.0 if y_pred == y else 1.0
            detections = self.drift.update_error(error, counters.n_learned, now)
            step.detections += detections
            if detections:
                counters.n_drifts += 1
            if detections and self.spec.drift_policy == "promote" and race.challengers:
                hand_over = True  # to the best challenger, once this event is learned
            else:
                self._react(bool(detections))
        race.champion.estimator.learn_one(x, y)
        if self.policy.background is not None:
            self.policy.learn(x, y)
        if shadow is not None:
            race.learn(x, y, shadow)
        counters.n_learned += 1
        n_learned = counters.n_learned
        if hand_over:
            best = race.best(self.spec.ranked_by, margin=None)
            if best is not None:
                step.promotions.append(self.promote(best.name, reason="drift"))
        elif (
            self.spec.auto_promote
            and race.challengers
            and n_learned % self.spec.rolling_window == 0
        ):
            best = race.best(self.spec.ranked_by, margin=self.spec.promotion_margin)
            if best is not None:
                step.promotions.append(self.promote(best.name, reason="auto"))
        step.learned = True
        if n_learned % self._history_every == 0:
            self.history.append({"n_learned": n_learned, "rolling": self.metrics.rolling()})

    def _react(self, drifted: bool) -> None:
        """The drift policy on the champion (see :mod:`.drift_policy`)."""
        fresh = self.policy.react(drifted, self.drift.warning, lambda: build_estimator(self.spec))
        if fresh is not None:
            self.race.champion.estimator = fresh
            self.model_version += 1

    def promote(self, name: str, reason: str) -> Promotion:
        """Make challenger ``name`` the champion; the champion becomes a challenger.

        Bumps ``model_version``. The caller snapshots the old champion first when it can.
        """
        record = self.race.promote(
            name, reason, metric=self.spec.ranked_by, n_learned=self.n_learned,
            model_version=self.model_version,
        )  # fmt: skip
        self.policy.background = None
        self.model_version += 1
        return record

    def check_label(self, label: Any) -> None:
        """Refuse a label of the wrong kind for the task, naming what was expected."""
        problem = check_label(label, self.spec.task, self.name)
        if problem is not None:
            raise InvalidEvent(problem, "label", self.name)

    @property
    def metrics(self) -> MetricTracker:
        """The metrics of the predictions served (the champion's, across promotions)."""
        return self.race.champion.metrics

    @property
    def estimator(self) -> Any:
        return self.race.champion.estimator

    @estimator.setter
    def estimator(self, estimator: Any) -> None:
        self.race.champion.estimator = estimator

    @property
    def challengers(self) -> list[Candidate]:
        return self.race.challengers

    @property
    def champion(self) -> str:
        return self.race.champion.name

    def leaderboard(self) -> list[dict[str, Any]]:
        return self.race.leaderboard(self.n_learned)

    @property
    def n_learned(self) -> int:
        return self.counters.n_learned

    @property
    def n_pending_labels(self) -> int:
        return len(self.labels.pending)

    def state(self) -> dict[str, Any]:
        """The counters and identity of the model, as the API shows them."""
        return {
            "name": self.name,
            "task": self.spec.task,
            "model_version": self.model_version,
            "champion": self.champion,
            "n_challengers": len(self.challengers),
            **self.counters.as_dict(),
            "n_pending_labels": self.n_pending_labels,
            "n_labels_waiting": len(self.labels.early),
            "n_features": len(self.guard),
            "label_lag": self.labels.lag(),
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
        }

    def pipeline_description(self) -> dict[str, Any]:
        """The built pipeline: each step, and what the auto stage does per feature."""
        return describe_pipeline(self.estimator)
