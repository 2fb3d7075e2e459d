"""One set of counts and running means from which every metric of a tracker is read.

River keeps one ``ConfusionMatrix`` per metric, and ``ROCAUC`` ten more, so six binary metrics
cost 16 confusion-matrix updates per event, and as many reverts once a rolling window is full.
:class:`Scores` keeps what those metrics are computed from, once: the count of each
``(y, y_pred)`` pair, ROC AUC's positives and negatives per band between its thresholds, and
River's running means (LogLoss, MAE...), with River's own arithmetic. Adding or removing a
prediction touches each count once, whatever the number of thresholds. Reading rebuilds a
River ``ConfusionMatrix`` from the pair counts and hands it to River's metrics through their
``cm=`` argument (only their ``get`` runs: their ``update`` would count into the shared
matrix once per metric), so the values are River's own.

Examples
--------
>>> import random
>>> from river import metrics
>>> rng = random.Random(42)
>>> scores, river_auc = Scores(("Accuracy", "ROCAUC"), "binary"), metrics.ROCAUC()
>>> scored = []
>>> for _ in range(200):
...     p = rng.random()
...     y, proba = rng.random() < p, {True: p, False: 1 - p}
...     scored.append(scores.score(y, p > 0.5, proba))
...     scores.add(scored[-1])
...     river_auc.update(y, proba)
>>> values = scores.values()
>>> round(values["Accuracy"], 3), bool(abs(values["ROCAUC"] - river_auc.get()) < 1e-12)
(0.76, True)
>>> for entry in scored:
...     scores.remove(entry)
>>> scores.n, scores.values() == {"Accuracy": 0.0, "ROCAUC": 0.0}
(0, True)
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from river import metrics

#: River's ROC AUC thresholds, with its ±1e-7 nudges at both ends.
THRESHOLDS: tuple[float, ...] = tuple(metrics.ROCAUC().thresholds)

#: Metrics read from a confusion matrix of the labels.
LABEL_METRICS = frozenset(
    {"Accuracy", "BalancedAccuracy", "CohenKappa", "GeometricMean", "MCC", "Precision",
     "Recall", "F1", "MacroF1", "MacroPrecision", "MacroRecall", "MicroF1", "MicroPrecision",
     "MicroRecall", "WeightedF1"}
)  # fmt: skip
#: River's binary metrics count ``y == True`` against ``y_pred == True``.
_BINARY = frozenset(
    n for n in LABEL_METRICS if issubclass(getattr(metrics, n), metrics.base.BinaryMetric)
)


def _clamp(p: float) -> float:
    return max(min(p, 1 - 1e-15), 1e-15)


def _log_loss(y: Any, y_pred: Any) -> float:
    p = _clamp(y_pred.get(True, 0.0) if isinstance(y_pred, dict) else y_pred)
    return -math.log(p) if y else -math.log(1 - p)  # River tests ``y``'s truth, not ``y == True``


def _cross_entropy(y: Any, y_pred: Any) -> float:
    total = 0.0
    for label, proba in y_pred.items():
        if y == label:
            total += math.log(_clamp(proba))
    return -total


def _smape(y: Any, y_pred: Any) -> float:
    den = abs(y) + abs(y_pred)
    return 0.0 if den == 0 else 2.0 * abs(y - y_pred) / den


def _squared_log_error(y: Any, y_pred: Any) -> float:
    return (math.log(y + 1) - math.log(y_pred + 1)) ** 2


#: River's ``MeanMetric._eval``: the value each prediction adds to a running mean. A removal
#: takes off what was added; River's ``RMSLE.revert`` takes off the squared error of the raw
#: values instead (it reverts MSE's), so River's rolling RMSLE drifts, even below 0.
_MEAN_VALUES: dict[str, Callable[[Any, Any], float]] = {
    "LogLoss": _log_loss,
    "CrossEntropy": _cross_entropy,
    "MAE": lambda y, y_pred: abs(y - y_pred),
    "MSE": lambda y, y_pred: (y - y_pred) ** 2,
    "RMSE": lambda y, y_pred: (y - y_pred) ** 2,
    "MAPE": lambda y, y_pred: 0.0 if y == 0 else abs(y - y_pred) / abs(y),
    "SMAPE": _smape,
    "RMSLE": _squared_log_error,
}
#: Metrics read from a running mean, and how: River's ``get`` on top of the mean.
_MEAN_READS: dict[str, Callable[[float], float]] = {
    "RMSE": lambda mean: mean**0.5,
    "RMSLE": lambda mean: mean**0.5,
    "MAPE": lambda mean: 100 * mean,
    "SMAPE": lambda mean: 100 * mean,
}
#: Metrics that read the probabilities rather than the predicted label.
PROBA_METRICS = frozenset({"ROCAUC", "LogLoss", "CrossEntropy"})
#: Every metric :class:`Scores` computes; others need River's own objects.
KNOWN = LABEL_METRICS | PROBA_METRICS | _MEAN_VALUES.keys() | {"R2"}

#: One scored prediction: its ``(y, y_pred)`` pair, its ROC AUC band (``2 * band + positive``,
#: or -1), the values it adds to the running means, and R2's ``(y, squared error)``.
Scored = tuple[tuple[Any, Any] | None, int, tuple[float, ...], Any]


class Scores:
    """Sufficient statistics of a multiset of scored predictions, for River's metrics.

    Parameters
    ----------
    names
        River metric class names, all in :data:`KNOWN`.
    task
        ``binary``, ``multiclass`` or ``regression``: regression metrics read ``y_pred``
        where classification ones read the probabilities.
    """

    def __init__(self, names: tuple[str, ...], task: str) -> None:
        self.names = names
        self.task = task
        self.n = 0
        self._labels = any(n in LABEL_METRICS for n in names)
        self._roc = "ROCAUC" in names
        self._means = tuple(n for n in names if n in _MEAN_VALUES)
        self._r2 = "R2" in names
        self._pairs: dict[tuple[Any, Any], int] = {}
        self._bands = [0] * (2 * len(THRESHOLDS) + 2)
        # River's stats.Mean, once for all the mean metrics (they share n).
        self._n_mean = 0.0
        self._mean = [0.0] * len(self._means)
        # River's R2: a stats.Var of y (n, mean, S) and the residual sum of squares.
        self._r2_state: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0)

    def score(self, y: Any, y_pred: Any, proba: dict[Any, float] | None) -> Scored:
        """What one prediction adds; raises as River does (on ``None`` probabilities, say)
        before anything is counted."""
        # As the tracker always did: regression metrics read y_pred, the others proba.
        scored: Any = y_pred if self.task == "regression" else proba
        band = -1
        if self._roc:
            p = scored.get(True, 0.0) if isinstance(scored, dict) else scored
            # River predicts positive at threshold t when p > t: the band is how many t < p.
            band = 2 * bisect_left(THRESHOLDS, p) + (y == True)  # noqa: E712 (River's ==, so 1 counts)
        added: tuple[float, ...] = ()
        if self._means:
            added = tuple([_MEAN_VALUES[n](y, scored) for n in self._means])
        r2 = (y, (y - y_pred) * (y - y_pred) * 1.0) if self._r2 else None
        return ((y, y_pred) if self._labels else None), band, added, r2

    def add(self, scored: Scored) -> None:
        """Count one scored prediction, with River's arithmetic."""
        pair, band, added, r2 = scored
        self.n += 1
        if pair is not None:
            self._pairs[pair] = self._pairs.get(pair, 0) + 1
        if band >= 0:
            self._bands[band] += 1
        if added:
            self._n_mean = n = self._n_mean + 1.0
            mean = self._mean
            for i, x in enumerate(added):
                mean[i] += (1.0 / n) * (x - mean[i])
        if r2 is not None:
            x, squared_error = r2
            n, m, s, rss = self._r2_state
            n += 1.0
            m_new = m + (1.0 / n) * (x - m)
            self._r2_state = (n, m_new, s + 1.0 * (x - m) * (x - m_new), rss + squared_error)

    def remove(self, scored: Scored) -> None:
        """Uncount one scored prediction added before, with River's arithmetic."""
        pair, band, removed, r2 = scored
        self.n -= 1
        if pair is not None:
            left = self._pairs[pair] - 1
            if left:
                self._pairs[pair] = left
            else:
                del self._pairs[pair]
        if band >= 0:
            self._bands[band] -= 1
        if removed:
            self._n_mean = n = self._n_mean - 1.0
            mean = self._mean
            if n == 0:  # River's stats.Mean starts afresh
                self._mean = [0.0] * len(mean)
            else:
                for i, x in enumerate(removed):
                    mean[i] -= (1.0 / n) * (x - mean[i])
        if r2 is not None:
            x, squared_error = r2
            n, m, s, rss = self._r2_state
            n -= 1.0
            if n == 0:  # River divides by zero here (a rolling R2 over 1 event); R2 is 0 anyway
                self._r2_state = (0.0, 0.0, 0.0, rss - squared_error)
                return
            m_new = m + (-1.0 / n) * (x - m)
            self._r2_state = (n, m_new, s + -1.0 * (x - m) * (x - m_new), rss - squared_error)

    def values(self) -> dict[str, float]:
        """Each metric, as River's ``get`` computes it."""
        cms: dict[bool, metrics.ConfusionMatrix] = {}
        out = {}
        for name in self.names:
            if name in LABEL_METRICS:
                binary = name in _BINARY
                if binary not in cms:
                    cms[binary] = self._confusion(binary)
                out[name] = float(getattr(metrics, name)(cm=cms[binary]).get())
            elif name == "ROCAUC":
                out[name] = self._roc_auc()
            elif name == "R2":
                out[name] = self._r2_value()
            else:
                mean = self._mean[self._means.index(name)]
                read = _MEAN_READS.get(name)
                out[name] = float(read(mean) if read else mean)
        return out

    def _confusion(self, binary: bool) -> metrics.ConfusionMatrix:
        cm = metrics.ConfusionMatrix()
        for (y, y_pred), count in self._pairs.items():
            if binary:
                cm.update(y == True, y_pred == True, float(count))  # noqa: E712 (as River does)
            else:
                cm.update(y, y_pred, float(count))
        return cm

    def _roc_auc(self) -> float:
        """River's ``ROCAUC.get``: its trapezoid under (FPR, TPR) at each threshold."""
        negatives, positives = self._bands[0::2], self._bands[1::2]
        n_pos, n_neg = sum(positives), sum(negatives)
        tp, fp = n_pos, n_neg
        tprs, fprs = [], []
        for i in range(len(THRESHOLDS)):  # at threshold i, bands above i are predicted True
            tp -= positives[i]
            fp -= negatives[i]
            tprs.append(tp / n_pos if n_pos else 0.0)
            fprs.append(fp / n_neg if n_neg else 0.0)
        area = 0.0
        for i in range(len(THRESHOLDS) - 1):
            area += (fprs[i + 1] - fprs[i]) * (tprs[i + 1] + tprs[i]) / 2.0
        return -area

    def _r2_value(self) -> float:
        n, _, s, rss = self._r2_state
        if n > 1:
            try:
                return float(1 - rss / ((n - 1) * (s / (n - 1))))
            except ZeroDivisionError:
                return 0.0
        return 0.0
