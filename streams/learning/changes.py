"""What a change of a model's spec does to the live model: nothing, in place, or a rebuild.

A setting that decides what the estimator is or what it has learned from (the task, the
pipeline and its challengers, the preprocessing) needs a new model, learned from scratch; the
old one is kept as a snapshot. Every other setting applies to the live model in place: a new
``snapshot_every`` or ``alert_below`` at once; new metrics or a new ``rolling_window`` start
new counts (the estimator keeps what it learned); new drift detectors start watching afresh.

Examples
--------
>>> from streams.learning.spec import ModelSpec
>>> old = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
>>> classify(old, old.model_copy(update={"snapshot_every": 5}))
'in_place'
>>> classify(old, ModelSpec(name="m", task="regression",
...                         pipeline="tree.HoeffdingTreeRegressor()"))
'rebuild'
>>> changed_fields(old, old.model_copy(update={"rolling_window": 50}))
['rolling_window']
"""

from __future__ import annotations

from typing import Any, Literal

from streams.learning.build import build_estimator
from streams.learning.candidates import Candidate
from streams.learning.drift import DriftMonitor
from streams.learning.drift_policy import DriftPolicy
from streams.learning.metrics import MetricTracker
from streams.learning.spec import ModelSpec

#: Settings whose change needs a new model, learned from scratch (a new ``model_version``).
REBUILD_FIELDS = frozenset(
    {"task", "pipeline", "preprocess", "challengers", "search", "max_categories"}
)
#: Settings applied to the live model as it is.
IN_PLACE_FIELDS = frozenset(ModelSpec.model_fields) - REBUILD_FIELDS - {"name"}

Kind = Literal["unchanged", "in_place", "rebuild"]


def changed_fields(old: ModelSpec, new: ModelSpec) -> list[str]:
    """The settings that differ between two specs of one model, sorted."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return sorted(name for name in after if before.get(name) != after[name])


def classify(old: ModelSpec, new: ModelSpec) -> Kind:
    """What going from ``old`` to ``new`` needs."""
    changed = set(changed_fields(old, new))
    if not changed:
        return "unchanged"
    return "rebuild" if changed & REBUILD_FIELDS else "in_place"


def apply_in_place(model: Any, spec: ModelSpec) -> None:
    """Give the live ``model`` (an :class:`~streams.learning.model.OnlineModel`) the settings
    of ``spec``, which differs from its own in :data:`IN_PLACE_FIELDS` only."""
    old: ModelSpec = model.spec
    model.spec = spec
    if (old.metrics, old.rolling_window) != (spec.metrics, spec.rolling_window):
        for candidate in (model.race.champion, *model.race.challengers):
            candidate.metrics = MetricTracker(spec.task, spec.metrics, spec.rolling_window)
        model.history.clear()
        model._history_every = max(1, spec.rolling_window // 20)
    if (old.drift, old.drift_features) != (spec.drift, spec.drift_features):
        model.drift = DriftMonitor(spec.drift, spec.drift_features, spec.task)
    if old.drift_policy != spec.drift_policy:
        model.policy = DriftPolicy(spec.drift_policy)
    model.guard.max_features = spec.max_features
    if old.tuned != spec.tuned:
        join_tuned(model, spec)


def join_tuned(model: Any, spec: ModelSpec) -> None:
    """The race gets the tuned challengers of ``spec``, fresh: those of an earlier job leave
    it (unless one is the champion now, which stays), and the champion keeps what it learned."""
    race = model.race
    candidates = spec.candidate_pipelines()
    race.challengers = [
        c for c in race.challengers if not c.name.startswith("tuned-") or c.name in spec.tuned
    ]
    present = {race.champion.name, *(c.name for c in race.challengers)}
    for name in spec.tuned:
        if name not in present:
            expression, params = candidates[name]
            race.challengers.append(Candidate(
                name, expression, build_estimator(spec, expression, params),
                MetricTracker(spec.task, spec.metrics, spec.rolling_window),
            ))  # fmt: skip
