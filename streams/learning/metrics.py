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

from typing import Any, Literal

from river import metrics, utils

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
        self._cumulative = [getattr(metrics, n)() for n in self.names]
        self._rolling = [utils.Rolling(getattr(metrics, n), window_size=window) for n in self.names]
        # Decided once: which metrics read the probabilities and which the label.
        self._wants_proba = tuple(
            task != "regression" and not m.requires_labels for m in self._cumulative
        )

    def update(self, y: Any, y_pred: Any, proba: dict[Any, float] | None) -> None:
        """Score one prediction made before learning, as River's progressive validation does."""
        for cum, roll, wants_proba in zip(
            self._cumulative, self._rolling, self._wants_proba, strict=True
        ):
            pred = proba if wants_proba else y_pred
            cum.update(y, pred)
            roll.update(y, pred)

    def cumulative(self) -> dict[str, float]:
        """Each metric over every labelled event so far."""
        return {n: float(m.get()) for n, m in zip(self.names, self._cumulative, strict=True)}

    def rolling(self) -> dict[str, float]:
        """Each metric over the last ``window`` labelled events."""
        return {n: float(m.get()) for n, m in zip(self.names, self._rolling, strict=True)}
