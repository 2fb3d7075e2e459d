"""How a trial is scored: progressive validation equal to River's, prequential k-fold that tests
each event once and teaches it to every other fold, and a model that raises failing only its
trial."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import base, datasets, evaluate, linear_model, metrics, preprocessing, tree

from streams.learning.prequential import (
    Score,
    TrialFailed,
    fold_of,
    prequential_kfold,
    progressive_score,
)

Event = tuple[str, dict[str, Any], Any]

BINARY = list(itertools.islice(datasets.Phishing(), 600))
MULTICLASS = list(itertools.islice(datasets.ImageSegments(), 400))
REGRESSION = list(itertools.islice(datasets.TrumpApproval(), 400))

MODELS: dict[str, Callable[[], Any]] = {
    "scaled-logistic": lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(),
    "tree": lambda: tree.HoeffdingTreeClassifier(grace_period=50),
    "scaled-softmax": lambda: preprocessing.StandardScaler() | linear_model.SoftmaxRegression(),
    "scaled-linear": lambda: preprocessing.StandardScaler() | linear_model.LinearRegression(),
    "tree-regressor": lambda: tree.HoeffdingTreeRegressor(grace_period=50),
}
CASES = [
    *((BINARY, model, metric) for model in ("scaled-logistic", "tree")
      for metric in ("Accuracy", "F1", "ROCAUC", "LogLoss")),
    *((MULTICLASS, model, metric) for model in ("tree", "scaled-softmax")
      for metric in ("Accuracy", "MacroF1")),
    *((REGRESSION, model, metric) for model in ("scaled-linear", "tree-regressor")
      for metric in ("MAE", "RMSE", "R2")),
]  # fmt: skip


def window_of(
    data: list[tuple[dict[str, Any], Any]], start: int = 0, stop: int | None = None
) -> list[Event]:
    return [(f"e{i}", x, y) for i, (x, y) in enumerate(data[start:stop], start=start)]


def river_score(make: Callable[[], Any], window: list[Event], metric_name: str) -> float:
    metric = evaluate.progressive_val_score(
        dataset=[(x, y) for _, x, y in window],
        model=make(),
        metric=getattr(metrics, metric_name)(),
    )
    return float(metric.get())


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=0, abs_tol=1e-9)


# Progressive validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "model", "metric"), CASES, ids=[f"{len(d)}-{m}-{n}" for d, m, n in CASES]
)
def test_progressive_score_is_rivers_over_the_whole_window(
    data: list[tuple[dict[str, Any], Any]], model: str, metric: str
) -> None:
    window = window_of(data)
    score = progressive_score(MODELS[model], window, metric)
    assert close(score.value, river_score(MODELS[model], window, metric))
    assert score.folds == () and score.spread is None
    assert score.bigger_is_better == getattr(metrics, metric)().bigger_is_better
    assert 0 < score.n <= len(window)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.sampled_from(CASES),
    st.integers(0, 300),
    st.integers(1, 120),
)
def test_progressive_score_is_rivers_on_any_slice(
    case: tuple[list[tuple[dict[str, Any], Any]], str, str], start: int, length: int
) -> None:
    data, model, metric = case
    window = window_of(data, start, start + length)
    score = progressive_score(MODELS[model], window, metric)
    expected = river_score(MODELS[model], window, metric)
    if score.n:
        assert close(score.value, expected)
    else:  # nothing predicted (a tree before its first leaf): nothing to score
        assert score.value is None


def test_an_empty_window_scores_nothing() -> None:
    score = progressive_score(MODELS["tree"], [], "Accuracy")
    assert score == Score(None, (), None, 0, True)
    assert score.public() == {
        "value": None,
        "folds": [],
        "spread": None,
        "n": 0,
        "bigger_is_better": True,
    }


def test_a_prediction_that_is_empty_or_none_is_not_scored() -> None:
    # A fresh Hoeffding tree answers {} until it has seen a label: that event is not scored.
    window = window_of(BINARY, 0, 10)
    assert progressive_score(MODELS["tree"], window, "Accuracy").n == 9
    assert progressive_score(MODELS["tree"], window, "LogLoss").n == 9
    assert progressive_score(MODELS["scaled-linear"], window_of(REGRESSION, 0, 10), "MAE").n == 10


# Prequential k-fold -----------------------------------------------------------------------


def expected_fold(event_id: str, k: int) -> int:
    digest = hashlib.blake2b(event_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % k


class Recorder(base.Classifier):  # type: ignore[misc]  # River is untyped
    """Remembers the id of every event it is asked to predict, and of every one it learns."""

    def __init__(self) -> None:
        self.tested: list[str] = []
        self.learned: list[str] = []

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        self.learned.append(x["id"])

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        self.tested.append(x["id"])
        return {True: 0.75, False: 0.25}


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_each_event_is_tested_by_its_fold_and_learned_by_the_others(k: int) -> None:
    window = [(f"event-{i}", {"id": f"event-{i}"}, i % 3 == 0) for i in range(200)]
    made: list[Recorder] = []

    def make() -> Recorder:
        made.append(Recorder())
        return made[-1]

    score = prequential_kfold(make, window, "Accuracy", k=k)
    assert len(made) == k
    for event_id, _, _ in window:
        fold = expected_fold(event_id, k)
        assert fold_of(event_id, k) == fold
        assert [m.tested.count(event_id) for m in made] == [int(f == fold) for f in range(k)]
        assert [m.learned.count(event_id) for m in made] == [int(f != fold) for f in range(k)]
    # Each copy learns in the window's order.
    for model in made:
        learned = set(model.learned)
        assert model.learned == [e for e, _, _ in window if e in learned]
    assert score.n == len(window)
    assert len(score.folds) == k


def test_the_score_is_the_mean_of_the_folds_and_the_spread_their_pstdev() -> None:
    window = window_of(BINARY)
    score = prequential_kfold(MODELS["scaled-logistic"], window, "Accuracy", k=4)
    folds = [f for f in score.folds if f is not None]
    assert len(folds) == 4
    assert score.value is not None and close(score.value, statistics.fmean(folds))
    assert score.spread is not None and close(score.spread, statistics.pstdev(folds))
    assert score.n == len(window)
    # Each fold's model learns three events of four: about as good as progressive validation.
    progressive = progressive_score(MODELS["scaled-logistic"], window, "Accuracy")
    assert progressive.value is not None
    assert abs(score.value - progressive.value) < 0.1
    public = score.public()
    assert json.loads(json.dumps(public)) == public


def test_each_fold_scores_what_it_was_tested_on() -> None:
    # Fold f's metric is River's metric over the events it tested, predicted by a model that
    # learned every other event before them.
    k = 3
    window = window_of(BINARY, 0, 300)
    score = prequential_kfold(MODELS["scaled-logistic"], window, "F1", k=k)
    for fold in range(k):
        model, metric = MODELS["scaled-logistic"](), metrics.F1()
        for event_id, x, y in window:
            if expected_fold(event_id, k) == fold:
                metric.update(y, model.predict_one(x))
            else:
                model.learn_one(x, y)
        assert close(score.folds[fold], metric.get())


def test_a_fold_that_tests_nothing_is_left_out() -> None:
    ids = [f"e{i}" for i in range(400)]
    window = [(e, x, y) for e, (x, y) in zip(ids, BINARY, strict=False) if expected_fold(e, 3) != 2]
    score = prequential_kfold(MODELS["scaled-logistic"], window, "Accuracy", k=3)
    assert score.folds[2] is None
    first, second = score.folds[0], score.folds[1]
    assert first is not None and second is not None
    assert score.value == statistics.fmean([first, second])
    assert score.spread == statistics.pstdev([first, second])

    lone = [e for e in window if expected_fold(e[0], 3) == 0][:1]
    score = prequential_kfold(MODELS["scaled-logistic"], lone, "Accuracy", k=3)
    assert score.folds[1:] == (None, None) and score.spread is None and score.n == 1


def test_fold_assignment_does_not_depend_on_the_process() -> None:
    ids = [f"event-{i}" for i in range(50)] + ["é", "", "🙂"]
    code = (
        "import json, sys\n"
        "from streams.learning.prequential import fold_of\n"
        "print(json.dumps([fold_of(e, 7) for e in json.loads(sys.argv[1])]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(ids)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    assert json.loads(out.stdout) == [expected_fold(e, 7) for e in ids]


# Bad input --------------------------------------------------------------------------------


def test_an_unknown_metric_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'Acuracy'; choose from .*Accuracy"):
        progressive_score(MODELS["tree"], [], "Acuracy")
    with pytest.raises(ValueError, match="unknown metric"):
        prequential_kfold(MODELS["tree"], [], "__class__", k=2)


def test_a_metric_that_cannot_score_the_model_is_refused() -> None:
    with pytest.raises(ValueError, match="MAE cannot score a Pipeline"):
        progressive_score(MODELS["scaled-logistic"], [], "MAE")


@pytest.mark.parametrize("k", [0, 1, 11, 2.0, True])
def test_k_is_from_2_to_10(k: Any) -> None:
    with pytest.raises(ValueError, match="k: an integer from 2 to 10"):
        prequential_kfold(MODELS["tree"], [], "Accuracy", k=k)


class Breaks(base.Classifier):  # type: ignore[misc]  # River is untyped
    """Raises on the event whose ``x["n"]`` is 5."""

    def learn_one(self, x: dict[str, Any], y: Any) -> None:
        if x["n"] == 5:
            raise ZeroDivisionError("no luck")

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Any, float]:
        return {True: 1.0}


def test_a_model_that_raises_fails_the_trial() -> None:
    window = [(f"e{n}", {"n": n}, True) for n in range(10)]
    with pytest.raises(TrialFailed, match=r"event 5 \('e5'\): ZeroDivisionError: no luck"):
        progressive_score(Breaks, window, "Accuracy")
    with pytest.raises(TrialFailed, match=r"event 5 \('e5'\): ZeroDivisionError"):
        prequential_kfold(Breaks, window, "Accuracy", k=2)
    strings: list[Event] = [("a", {"x": 1.0}, True), ("b", {"x": "text"}, False)]
    with pytest.raises(TrialFailed, match=r"event 1 \('b'\): TypeError"):
        progressive_score(MODELS["scaled-logistic"], strings, "ROCAUC")
    assert not issubclass(TrialFailed, ValueError)
