"""How a tuning trial is scored on the stream's own history: prequential evaluation of a fresh
model over the window of events the node learned, in the order it learned them.

:func:`progressive_score` is River's progressive validation (predict, score, then learn, each
event in turn), exactly as :func:`river.evaluate.progressive_val_score` computes it.
:func:`prequential_kfold` is the k-fold distributed cross-validation of Bifet, Read, Zliobaite,
Pfahringer and Holmes ("Efficient Online Evaluation of Big Data Stream Classifiers", KDD 2015):
k copies of the model; each event tests the one copy its event id hashes to, and teaches the
other k - 1. Every event is tested once and learned k - 1 times, and the spread of the k fold
scores tells a real difference between two trials from noise.

Examples
--------
>>> from river import datasets, linear_model, preprocessing
>>> window = [(f"e{i}", x, y) for i, (x, y) in enumerate(datasets.Phishing().take(300))]
>>> def make():
...     return preprocessing.StandardScaler() | linear_model.LogisticRegression()
>>> score = progressive_score(make, window, "Accuracy")
>>> round(score.value, 4), score.n, score.bigger_is_better
(0.8467, 300, True)
>>> score = prequential_kfold(make, window, "Accuracy", k=3)
>>> len(score.folds), score.n, score.spread is not None
(3, 300, True)
>>> progressive_score(make, [("e0", {"a": "text"}, True)], "Accuracy")
Traceback (most recent call last):
...
streams.learning.prequential.TrialFailed: event 0 ('e0'): TypeError: ...
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from river import base, metrics

from streams.learning.errors import StreamlearnError
from streams.learning.metrics import ALLOWED

#: Every metric a trial may be scored with, by River class name.
METRICS = frozenset().union(*ALLOWED.values())
#: Fewest and most folds of :func:`prequential_kfold`.
FOLDS = (2, 10)
#: What a model may raise that is no failure of the trial.
_SYSTEM = (KeyboardInterrupt, SystemExit, GeneratorExit)

Window = Sequence[tuple[str, dict[str, Any], Any]]


class TrialFailed(StreamlearnError, RuntimeError):
    """The model of a trial raised on an event (or its metric did): the message names the
    event's index and id and the exception. The trial is failed, not the tuning job."""


@dataclass(frozen=True)
class Score:
    """A trial's score: ``value`` (``None`` when nothing could be scored), the score of each
    fold (``folds``, empty for plain progressive validation), their population standard
    deviation (``spread``), the number of events scored ``n``, and the metric's direction."""

    value: float | None
    folds: tuple[float | None, ...]
    spread: float | None
    n: int
    bigger_is_better: bool

    def public(self) -> dict[str, Any]:
        """The score as the API shows it (a non-finite number reads as ``null``)."""
        return {
            "value": _finite(self.value),
            "folds": [_finite(f) for f in self.folds],
            "spread": _finite(self.spread),
            "n": self.n,
            "bigger_is_better": self.bigger_is_better,
        }


def fold_of(event_id: str, k: int) -> int:
    """The fold that tests ``event_id``: a hash stable across processes and machines."""
    digest = hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % k


def progressive_score(make: Callable[[], Any], window: Window, metric_name: str) -> Score:
    """Progressive validation of ``make()`` over ``window`` of ``(event_id, x, y)``."""
    metric = _metric(metric_name)
    model = make()
    predict, learn = _protocol(model, metric)
    update = metric.update
    n = 0
    i = -1
    try:
        for i, (_, x, y) in enumerate(window):  # noqa: B007 (i names the failing event)
            y_pred = predict(x)
            if y_pred is not None and y_pred != {}:
                update(y, y_pred)
                n += 1
            learn(x, y)
    except BaseException as exc:
        if isinstance(exc, _SYSTEM):
            raise
        raise _failed(window, i, exc) from exc
    value = float(metric.get()) if n else None
    return Score(value, (), None, n, bool(metric.bigger_is_better))


def prequential_kfold(make: Callable[[], Any], window: Window, metric_name: str, k: int) -> Score:
    """Prequential k-fold cross-validation of ``make()`` over ``window``: each event is tested
    by the fold :func:`fold_of` its id and learned by the other ``k - 1`` folds."""
    if type(k) is not int or not FOLDS[0] <= k <= FOLDS[1]:
        raise ValueError(f"k: an integer from {FOLDS[0]} to {FOLDS[1]}, not {k!r}")
    fold_metrics = [_metric(metric_name) for _ in range(k)]
    protocols = [_protocol(make(), metric) for metric in fold_metrics]
    predicts = [predict for predict, _ in protocols]
    updates = [metric.update for metric in fold_metrics]
    learns = [learn for _, learn in protocols]
    # The learners other than each fold's own, built once rather than per event.
    others = [tuple(learns[:f] + learns[f + 1 :]) for f in range(k)]
    counts = [0] * k
    i = -1
    try:
        for i, (event_id, x, y) in enumerate(window):  # noqa: B007 (i names the failing event)
            f = fold_of(event_id, k)
            y_pred = predicts[f](x)
            if y_pred is not None and y_pred != {}:
                updates[f](y, y_pred)
                counts[f] += 1
            for learn in others[f]:
                learn(x, y)
    except BaseException as exc:
        if isinstance(exc, _SYSTEM):
            raise
        raise _failed(window, i, exc) from exc
    folds = tuple(
        float(metric.get()) if count else None
        for metric, count in zip(fold_metrics, counts, strict=True)
    )
    scored = [f for f in folds if f is not None]
    return Score(
        value=statistics.fmean(scored) if scored else None,
        folds=folds,
        spread=statistics.pstdev(scored) if len(scored) >= 2 else None,
        n=sum(counts),
        bigger_is_better=bool(fold_metrics[0].bigger_is_better),
    )


def _metric(name: str) -> Any:
    """A fresh River metric of that name, one of :data:`METRICS`."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {', '.join(sorted(METRICS))}")
    return getattr(metrics, name)()


def _protocol(model: Any, metric: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """How River's progressive validation predicts and learns with ``model`` for ``metric``:
    class probabilities for a metric that reads them, the predicted class otherwise."""
    if not metric.works_with(model):
        raise ValueError(f"{type(metric).__name__} cannot score a {type(model).__name__}")
    if isinstance(model, base.Classifier) and not metric.requires_labels:
        return model.predict_proba_one, model.learn_one
    return model.predict_one, model.learn_one


def _failed(window: Window, index: int, exc: BaseException) -> TrialFailed:
    event_id = window[index][0] if 0 <= index < len(window) else None
    text = str(exc)
    if len(text) > 200:
        text = text[:199] + "…"
    return TrialFailed(f"event {index} ({event_id!r}): {type(exc).__name__}: {text}")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
