"""A live model: the River estimator with its metrics, drift monitor, counters and stores.

It follows River's protocol exactly: predict; when the label is known (inline, or later from
the labels topic) score the prediction made before learning, feed the drift detectors, then
``learn_one`` on the features as they were at prediction time.

Examples
--------
>>> from streams.learning.events import NO_LABEL, Event, Label
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="binary", preprocess="none",
...                  pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()")
>>> model = OnlineModel(spec, Limits())
>>> model.process(Event("e1", "m", {"x": 1.0}, True), now=0.0).record.prediction, model.n_learned
(False, 1)
>>> model.process(Event("e1", "m", {"x": 1.0}, True), now=1.0).record, model.n_duplicates
(None, 1)
>>> _ = model.process(Event("e2", "m", {"x": 2.0}), now=2.0)
>>> model.n_pending_labels, model.process_label(Label("e2", "m", True), now=3.0).learned
(1, True)
"""

from __future__ import annotations

import copy
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from river import base, stats
from river import metrics as metrics_module

from streams.learning.candidates import Candidate, predict_with
from streams.learning.dedupe import DedupeWindow
from streams.learning.drift import Detection, DriftMonitor
from streams.learning.errors import InvalidEvent, UnknownCandidate
from streams.learning.events import NO_LABEL, Event, Label, finite_features
from streams.learning.guard import FeatureGuard, probe
from streams.learning.metrics import MetricTracker
from streams.learning.pending import Pending, PendingStore
from streams.learning.pipeline import parse_estimator
from streams.learning.preprocessing import AutoPreprocessor
from streams.learning.records import Prediction, Promotion
from streams.learning.spec import ModelSpec


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


def build_estimator(
    spec: ModelSpec, pipeline_expression: str | None = None, params: dict[str, Any] | None = None
) -> Any:
    """A fresh River estimator for ``spec`` (or one of its challengers): the pipeline, cloned
    with ``params`` if given, behind the auto stage if asked."""
    pipeline = parse_estimator(pipeline_expression or spec.pipeline)
    if params:
        pipeline = pipeline.clone(params)
    if spec.preprocess == "auto":
        return AutoPreprocessor(max_categories=spec.max_categories) | pipeline
    return pipeline


class OnlineModel:
    """One model of the node."""

    def __init__(self, spec: ModelSpec, limits: Limits) -> None:
        self.spec = spec
        self.name = spec.name
        self.estimator = build_estimator(spec)
        self.background: Any = None
        self.is_classifier = isinstance(self.estimator, base.Classifier)
        self.metrics = MetricTracker(spec.task, spec.metrics, spec.rolling_window)
        self.drift = DriftMonitor(spec.drift, spec.drift_features, spec.task)
        self.champion = "default"
        self.challengers = [
            Candidate(name, expression, build_estimator(spec, expression, params), self._tracker())
            for name, (expression, params) in spec.candidate_pipelines().items()
        ]
        self.champion_pipeline = spec.pipeline
        self.dedupe = DedupeWindow(limits.dedupe_size, limits.dedupe_seconds)
        self.pending = PendingStore(limits.pending_size, limits.pending_seconds)
        self.labelled = DedupeWindow(limits.dedupe_size, limits.dedupe_seconds)
        # Labels that overtook their event (the two topics are not ordered with each other).
        self.early: OrderedDict[str, tuple[Any, float]] = OrderedDict()
        self._limits = limits
        self.history: deque[dict[str, Any]] = deque(maxlen=500)
        self._history_every = max(1, spec.rolling_window // 20)
        self.label_lag_seconds = stats.Mean()
        self.label_lag_events = stats.Mean()
        self.guard = FeatureGuard(probe(spec), spec.max_features)
        self.model_version = 1
        #: Events whose predict or learn raised inside River (the model was left as it was).
        self.n_model_errors = 0
        self.n_events = self.n_predicted = self.n_learned = 0
        self.n_duplicates = self.n_dead_letters = self.n_missing_values = 0
        self.n_pending_expired = self.n_labels_unmatched = self.n_labels_duplicate = 0
        self.n_labels_early = 0
        self.n_drifts = 0
        self.last_event_at: datetime | None = None
        self._now = -1.0
        # Labels of this exact type always fit the task; others go through check_label.
        self._label_type: type = {"binary": bool, "multiclass": str, "regression": float}[spec.task]
        self._ts: str | None = None
        #: Next offset to read per ``topic:partition``, as of the snapshot this model came from.
        self.offsets: dict[str, int] = {}
        self.n_learned_at_snapshot = 0

    def _tracker(self) -> MetricTracker:
        return MetricTracker(self.spec.task, self.spec.metrics, self.spec.rolling_window)

    #: Attributes a snapshot carries: everything needed to resume exactly.
    _STATE = (
        "estimator", "background", "champion", "challengers", "champion_pipeline",
        "metrics", "drift", "dedupe", "pending", "labelled", "early", "history", "guard",
        "label_lag_seconds", "label_lag_events", "model_version", "n_events", "n_predicted",
        "n_learned", "n_duplicates", "n_dead_letters", "n_missing_values", "n_pending_expired",
        "n_labels_unmatched", "n_labels_duplicate", "n_labels_early", "n_drifts",
        "n_model_errors", "last_event_at",
    )  # fmt: skip
    #: Counters the node keeps about a model from outside its steps: a step never changes
    #: them, so going back to a checkpoint (see :mod:`streams.learning.journal`) keeps them.
    _OUTSIDE = ("n_dead_letters", "n_model_errors")
    #: Added after the first snapshots were written: older snapshots start them afresh.
    _ADDED = frozenset({"guard", "n_model_errors"})

    def learning_state(self) -> dict[str, Any]:
        """Everything the model has learned and counted (what a snapshot carries)."""
        return {name: getattr(self, name) for name in self._STATE}

    def load_learning_state(self, state: dict[str, Any]) -> None:
        """Become the model ``state`` describes (from :meth:`learning_state`)."""
        for name in self._STATE:
            if name in state or name not in self._ADDED:
                setattr(self, name, state[name])

    def outside_counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self._OUTSIDE}

    def restore_outside_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            setattr(self, name, value)

    def snapshot_state(self, offsets: dict[str, int]) -> dict[str, Any]:
        """The model's whole learning state with the offsets it has consumed."""
        state = self.learning_state()
        state["spec"] = self.spec.model_dump(mode="json")
        state["offsets"] = dict(offsets)
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        """Become the model a snapshot describes (same spec required)."""
        mine = self.spec.model_dump(mode="json")
        theirs = state.get("spec", {})
        for field_name in ("task", "pipeline", "preprocess", "metrics", "max_categories"):
            if theirs.get(field_name) != mine[field_name]:
                raise ValueError(
                    f"snapshot of {self.name!r} has {field_name}={theirs.get(field_name)!r},"
                    f" the models file says {mine[field_name]!r}"
                )
        self.load_learning_state(state)
        self.offsets = dict(state["offsets"])
        self.n_learned_at_snapshot = self.n_learned

    def predict(self, x: dict[str, Any]) -> tuple[Any, dict[Any, float] | None]:
        """The prediction and, for classifiers, the class probabilities. Never learns, and
        never changes the model: features it has never been given are left out.

        Raises :class:`InvalidEvent` for a value the model cannot take, by the rules of the
        events topic (non-finite numbers are missing values).
        """
        known = self.guard.known(finite_features(x))
        try:
            return predict_with(self.estimator, self.is_classifier, known)
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
        if label is not NO_LABEL and type(label) is not self._label_type:
            self.check_label(label)
        x, dropped = self.guard.admit(event.features)
        # The event keeps the features as the model took them, and how many names were left
        # out: a step taken again (see journal.py) then holds and counts the same.
        event.features = x
        event.n_dropped += dropped
        self.guard.n_features_dropped += event.n_dropped
        self.n_events += 1
        if now != self._now:  # the events of one message share their time: format it once
            self._now = now
            self.last_event_at = datetime.fromtimestamp(now, tz=UTC)
            self._ts = self.last_event_at.isoformat()
        if self.dedupe.seen(event.event_id, now):
            self.n_duplicates += 1
            return Step()
        self.n_missing_values += event.n_missing
        y_pred, proba = predict_with(self.estimator, self.is_classifier, x)
        self.n_predicted += 1
        step = Step(record=self._record(event.event_id, y_pred, proba))
        shadow = [c.predict(x) for c in self.challengers] if self.challengers else None
        if self.drift.watches_features:
            step.detections += self.drift.update_features(x, self.n_learned)
        if label is NO_LABEL and self.early:
            label = self._early_label(event.event_id, now)
        if label is not NO_LABEL:
            self._learn(x, label, y_pred, proba, step, shadow)
        else:
            self.n_pending_expired += self.pending.add(
                event.event_id, Pending(x, y_pred, proba, now, self.n_events, shadow), now
            )
        return step

    def process_label(self, label: Label, now: float) -> Step:
        """Complete a parked prediction: score it, then learn from its stored features."""
        self.check_label(label.label)
        self.n_pending_expired += self.pending.expire(now)
        pending = self.pending.pop(label.event_id)
        step = Step()
        if pending is None:
            if self.labelled.seen(label.event_id, now):
                self.n_labels_duplicate += 1
            else:
                self._hold_early(label, now)
            return step
        self.labelled.seen(label.event_id, now)
        self.label_lag_seconds.update(max(0.0, now - pending.at))
        self.label_lag_events.update(self.n_events - pending.seq)
        self._learn(
            pending.x, label.label, pending.y_pred, pending.proba, step, pending.challengers
        )
        return step

    def _hold_early(self, label: Label, now: float) -> None:
        """Keep a label whose event has not been seen yet, within the pending bounds."""
        early = self.early
        early[label.event_id] = (label.label, now)
        horizon = now - self._limits.pending_seconds
        while early and (
            len(early) > self._limits.pending_size or next(iter(early.values()))[1] < horizon
        ):
            early.popitem(last=False)
            self.n_labels_unmatched += 1

    def _early_label(self, event_id: str, now: float) -> Any:
        held = self.early.pop(event_id, None)
        if held is None or now - held[1] > self._limits.pending_seconds:
            return NO_LABEL
        self.labelled.seen(event_id, now)
        self.n_labels_early += 1
        # The label came first: no time and no events between prediction and label.
        self.label_lag_seconds.update(0.0)
        self.label_lag_events.update(0)
        return held[0]

    def _learn(
        self,
        x: dict[str, Any],
        y: Any,
        y_pred: Any,
        proba: Any,
        step: Step,
        shadow: list[tuple[Any, Any]] | None = None,
    ) -> None:
        hand_over = False
        if y_pred is not None:
            self.metrics.update(y, y_pred, proba)
        if self.drift.watched:
            if self.spec.task == "regression":
                error = abs(y - y_pred) if y_pred is not None else 0.0
            else:
                error = 0.0 if y_pred == y else 1.0
            detections = self.drift.update_error(error, self.n_learned)
            step.detections += detections
            if detections and self.spec.drift_policy == "promote" and self.challengers:
                self.n_drifts += 1
                hand_over = True  # to the best challenger, once this event is learned
            else:
                self._apply_policy(bool(detections))
        self.estimator.learn_one(x, y)
        if self.background is not None:
            self.background.learn_one(x, y)
        if shadow is not None:
            for candidate, prediction in zip(self.challengers, shadow, strict=False):
                candidate.learn(x, y, prediction)
        self.n_learned += 1
        if hand_over:
            best = self.best_challenger(margin=None)
            if best is not None:
                step.promotions.append(self.promote(best.name, reason="drift"))
        elif (
            self.spec.auto_promote
            and self.challengers
            and self.n_learned % self.spec.rolling_window == 0
        ):
            best = self.best_challenger(margin=self.spec.promotion_margin)
            if best is not None:
                step.promotions.append(self.promote(best.name, reason="auto"))
        step.learned = True
        if self.n_learned % self._history_every == 0:
            self.history.append({"n_learned": self.n_learned, "rolling": self.metrics.rolling()})

    def best_challenger(self, margin: float | None) -> Candidate | None:
        """The challenger with the best rolling promotion metric, if it beats the champion's
        served rolling metric by ``margin`` (any challenger, when ``margin`` is None)."""
        name = self.spec.promotion_metric or self.spec.metrics[0]
        sign = 1.0 if getattr(metrics_module, name)().bigger_is_better else -1.0
        champion = sign * self.metrics.rolling()[name]
        scored = [(sign * c.metrics.rolling()[name], c) for c in self.challengers if c.n_learned]
        if not scored:
            return None
        score, best = max(scored, key=lambda pair: pair[0])
        if margin is not None and not score > champion + margin:
            return None
        return best

    def promote(self, name: str, reason: str) -> Promotion:
        """Make challenger ``name`` the champion; the champion becomes a challenger.

        Bumps ``model_version``. The caller snapshots the old champion first when it can.
        """
        index = next((i for i, c in enumerate(self.challengers) if c.name == name), None)
        if index is None:
            raise UnknownCandidate(self.name, name)
        winner = self.challengers[index]
        metric = self.spec.promotion_metric or self.spec.metrics[0]
        record = Promotion(
            self.name, self.champion, winner.name, reason, metric,
            self.metrics.rolling()[metric], winner.metrics.rolling()[metric], self.n_learned,
            self.model_version + 1,
        )  # fmt: skip
        retired = Candidate(self.champion, self.champion_pipeline, self.estimator, self._tracker())
        retired.metrics = copy.deepcopy(self.metrics)
        retired.n_learned = self.n_learned
        self.challengers[index] = retired
        self.estimator = winner.estimator
        self.is_classifier = winner.is_classifier
        self.champion, self.champion_pipeline = winner.name, winner.pipeline
        self.background = None
        self.model_version += 1
        return record

    def leaderboard(self) -> list[dict[str, Any]]:
        """The champion (with the metrics of the predictions it served) first, then every
        challenger."""
        champion = {
            "name": self.champion, "role": "champion", "pipeline": self.champion_pipeline,
            "n_learned": self.n_learned, "cumulative": self.metrics.cumulative(),
            "rolling": self.metrics.rolling(), "microseconds_per_event": None, "memory_bytes": None,
        }  # fmt: skip
        return [champion, *(c.public("challenger") for c in self.challengers)]

    def _apply_policy(self, drifted: bool) -> None:
        """``reset``: a fresh clone on drift; ``retrain``: a background model from the
        warning, swapped in on drift (a fresh clone if no warning came first)."""
        policy = self.spec.drift_policy
        if drifted:
            self.n_drifts += 1
        if policy == "retrain" and self.drift.warning and self.background is None:
            self.background = build_estimator(self.spec)
        if drifted and policy != "alert":
            self.estimator = (
                self.background if self.background is not None else build_estimator(self.spec)
            )
            self.background = None
            self.model_version += 1

    def _record(self, event_id: str, y_pred: Any, proba: Any) -> Prediction:
        return Prediction(event_id, self.name, self.model_version, y_pred, self._ts, proba)

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
                self.name,
            )

    @property
    def n_pending_labels(self) -> int:
        return len(self.pending)

    @property
    def n_features_dropped(self) -> int:
        return self.guard.n_features_dropped

    def state(self) -> dict[str, Any]:
        """The counters and identity of the model, as the API shows them."""
        return {
            "name": self.name,
            "task": self.spec.task,
            "model_version": self.model_version,
            "champion": self.champion,
            "n_challengers": len(self.challengers),
            "n_events": self.n_events,
            "n_predicted": self.n_predicted,
            "n_learned": self.n_learned,
            "n_duplicates": self.n_duplicates,
            "n_dead_letters": self.n_dead_letters,
            "n_pending_labels": self.n_pending_labels,
            "n_pending_expired": self.n_pending_expired,
            "n_labels_unmatched": self.n_labels_unmatched,
            "n_labels_waiting": len(self.early),
            "n_labels_early": self.n_labels_early,
            "n_labels_duplicate": self.n_labels_duplicate,
            "n_missing_values": self.n_missing_values,
            "n_drifts": self.n_drifts,
            "n_model_errors": self.n_model_errors,
            "n_features": len(self.guard),
            "n_features_dropped": self.n_features_dropped,
            "label_lag": {
                "mean_seconds": self.label_lag_seconds.get(),
                "mean_events": self.label_lag_events.get(),
                "n": int(self.label_lag_seconds.n),
            },
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
