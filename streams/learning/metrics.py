"""Metrics by task, kept cumulative and over a rolling window.

Examples
--------
>>> tracker = MetricTracker("binary", ["Accuracy", "ROCAUC"], window=2)
>>> tracker.update(True, True, {True: 0.8, False: 0.2})
>>> tracker.update(False, True, {True: 0.6, False: 0.4})
>>> tracker.update(False, False, {True: 0.3, False: 0.7})
>>> tracker.cumulative()["Accuracy"], tracker.rolling()["Accuracy"]
(0.666..., 0.5)
"""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from river import metrics, utils

from streams.learning.scores import KNOWN, Scored, Scores

Task = Literal["binary", "multiclass", "regression"]

#: Metrics each task accepts, by River class name.
ALLOWED: dict[str, frozenset[str]] = {
    "binary": frozenset(
        {"Accuracy", "BalancedAccuracy", "CohenKappa", "F1", "LogLoss", "MCC", "Precision",
         "Recall", "ROCAUC", "GeometricMean"}
    ),
    "multiclass": frozenset(
        {"Accuracy", "BalancedAccuracy", "CohenKappa", "CrossEntropy", "MacroF1", "MacroPrecision",
         "MacroRecall", "MicroF1", "MicroPrecision", "MicroRecall", "WeightedF1", "MCC"}
    ),
    "regression": frozenset({"MAE", "MSE", "RMSE", "R2", "SMAPE", "MAPE", "RMSLE"}),
}  # fmt: skip

#: Metrics a model gets when its spec names none.
DEFAULTS: dict[str, tuple[str, ...]] = {
    "binary": ("Accuracy", "Precision", "Recall", "F1", "ROCAUC", "LogLoss"),
    "multiclass": ("Accuracy", "MacroF1", "MicroF1"),
    "regression": ("MAE", "RMSE", "R2"),
}


class MetricTracker:
    """Cumulative and rolling copies of each metric, updated from one prediction.

    Each prediction is scored once into :class:`~streams.learning.scores.Scores`, counted
    into the cumulative scores and the rolling ones, and taken off the rolling scores when it
    leaves the window, so the values are those of River's metrics and of
    ``utils.Rolling(metric, window_size=window)``, at a fraction of their cost.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    names
        River metric class names, each allowed for the task.
    window
        Size of the rolling window, in labelled events.
    """

    def __init__(self, task: str, names: list[str] | tuple[str, ...], window: int) -> None:
        self.task = task
        self.names = tuple(names)
        self.window = window
        known = tuple(n for n in self.names if n in KNOWN)
        self._cumulative = Scores(known, task)
        self._rolling = Scores(known, task)
        self._window: deque[Scored] = deque()
        # Metrics Scores does not know (none of ALLOWED) keep River's own objects.
        self._river = {
            n: (getattr(metrics, n)(), utils.Rolling(getattr(metrics, n), window_size=window))
            for n in self.names
            if n not in KNOWN
        }

    def update(self, y: Any, y_pred: Any, proba: dict[Any, float] | None) -> None:
        """Score one prediction made before learning, as River's progressive validation does."""
        scored = self._cumulative.score(y, y_pred, proba)
        self._cumulative.add(scored)
        if len(self._window) == self.window:  # River's Rolling reverts the oldest first
            self._rolling.remove(self._window.popleft())
        self._rolling.add(scored)
        self._window.append(scored)
        for cumulative, rolling in self._river.values():
            pred = proba if self.task != "regression" and not cumulative.requires_labels else y_pred
            cumulative.update(y, pred)
            rolling.update(y, pred)

    def cumulative(self) -> dict[str, float]:
        """Each metric over every labelled event so far."""
        return self._read(self._cumulative, 0)

    def rolling(self) -> dict[str, float]:
        """Each metric over the last ``window`` labelled events."""
        return self._read(self._rolling, 1)

    def _read(self, scores: Scores, which: int) -> dict[str, float]:
        values = scores.values()
        if not self._river:
            return values
        values |= {n: float(pair[which].get()) for n, pair in self._river.items()}
        return {n: values[n] for n in self.names}
