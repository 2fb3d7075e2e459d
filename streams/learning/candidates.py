"""Challengers: other pipelines that see the same events as the champion, learn in the shadow
and are scored by the same progressive validation; and the grid search that makes them.

Examples
--------
>>> expand_grid({"LogisticRegression.l2": [0.0, 0.1], "LogisticRegression.intercept_lr": [0.01]},
...             budget=4, seed=0)
{'search-1': {'LogisticRegression': {'intercept_lr': 0.01, 'l2': 0.0}}, \
'search-2': {'LogisticRegression': {'intercept_lr': 0.01, 'l2': 0.1}}}
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from typing import Any

from river import base

from streams.learning.metrics import MetricTracker


class Candidate:
    """One challenger: its estimator, its own metrics, and what it costs."""

    def __init__(self, name: str, pipeline: str, estimator: Any, tracker: MetricTracker) -> None:
        self.name = name
        self.pipeline = pipeline
        self.estimator = estimator
        self.is_classifier = isinstance(estimator, base.Classifier)
        self.metrics = tracker
        self.n_learned = 0
        self.seconds = 0.0

    def predict(self, x: dict[str, Any]) -> tuple[Any, dict[Any, float] | None]:
        started = time.perf_counter()
        prediction = predict_with(self.estimator, self.is_classifier, x)
        self.seconds += time.perf_counter() - started
        return prediction

    def learn(self, x: dict[str, Any], y: Any, prediction: tuple[Any, Any]) -> None:
        """Score the prediction made before learning, then learn (River's protocol)."""
        started = time.perf_counter()
        y_pred, proba = prediction
        if y_pred is not None:
            self.metrics.update(y, y_pred, proba)
        self.estimator.learn_one(x, y)
        self.n_learned += 1
        self.seconds += time.perf_counter() - started

    def public(self, role: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": role,
            "pipeline": self.pipeline,
            "n_learned": self.n_learned,
            "cumulative": self.metrics.cumulative(),
            "rolling": self.metrics.rolling(),
            "microseconds_per_event": 1e6 * self.seconds / self.n_learned
            if self.n_learned
            else None,
            "memory_bytes": _memory(self.estimator),
        }


def predict_with(estimator: Any, is_classifier: bool, x: dict[str, Any]) -> tuple[Any, Any]:
    """The prediction and, for classifiers, the class probabilities."""
    if is_classifier:
        proba = estimator.predict_proba_one(x)
        return (max(proba, key=proba.get) if proba else None), proba
    return estimator.predict_one(x), None


def expand_grid(grid: dict[str, list[Any]], budget: int, seed: int) -> dict[str, dict[str, Any]]:
    """``{"Step.param": [values]}`` into at most ``budget`` parameter sets for ``clone``,
    a seeded random sample when the grid is larger."""
    keys = sorted(grid)
    sizes = [len(grid[k]) for k in keys]
    total = math.prod(sizes)
    # A seeded sample of positions in the grid, in itertools.product's order (the same
    # sample as of the list itself), without building a grid that may hold billions.
    positions: Sequence[int] = range(total)
    if total > budget:
        positions = random.Random(seed).sample(positions, budget)  # noqa: S311 (seeded)
    combos = []
    for position in positions:
        values = []
        for key, size in zip(reversed(keys), reversed(sizes), strict=True):
            position, index = divmod(position, size)
            values.append(grid[key][index])
        combos.append(dict(zip(keys, reversed(values), strict=True)))
    sets = {}
    for i, combo in enumerate(combos, start=1):
        params: dict[str, Any] = {}
        for key, value in combo.items():
            step, _, param = key.rpartition(".")
            if step:  # a pipeline step's parameter
                params.setdefault(step, {})[param] = value
            else:
                params[param] = value
        sets[f"search-{i}"] = params
    return sets


def _memory(estimator: Any) -> int | None:
    try:
        return int(estimator._raw_memory_usage)
    except (AttributeError, TypeError, ValueError, RecursionError):
        return None
