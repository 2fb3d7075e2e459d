"""Tuned challengers in a spec: checked like a search space, and joining a live race in
place (the champion keeps what it learned; an earlier job's leave, unless champion)."""

from __future__ import annotations

import itertools

import pytest
from pydantic import ValidationError
from river import datasets, linear_model, optim, preprocessing

from streams.learning.changes import apply_in_place, classify
from streams.learning.events import Event
from streams.learning.model import Limits, OnlineModel
from streams.learning.spec import ModelSpec

BASE = ModelSpec(
    name="m",
    task="binary",
    preprocess="none",
    pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()",
)
GOOD = {"LogisticRegression.l2": 0.001, "LogisticRegression.optimizer.lr": 0.2}


def tuned(**configurations: dict[str, float]) -> ModelSpec:
    return BASE.model_copy(update={"tuned": configurations})


@pytest.mark.parametrize(
    ("configurations", "words"),
    [
        ({"search-1": GOOD}, "not a valid name"),
        ({"tuned-a": {"LogisticRegression.nope": 1.0}}, "tuned.tuned-a.LogisticRegression.nope"),
        ({"tuned-a": {"LogisticRegression.l2": [0.1]}}, "tuned.tuned-a.LogisticRegression.l2"),
        ({"tuned-a": {}}, "tuned.tuned-a"),
        ({"tuned-a": {"LogisticRegression.l2": float("inf")}}, "tuned.tuned-a"),
    ],
)
def test_a_tuned_configuration_that_does_not_fit_is_refused(
    configurations: dict[str, dict[str, object]], words: str
) -> None:
    fields = {**BASE.model_dump(exclude={"tuned", "metrics"}), "tuned": configurations}
    with pytest.raises(ValidationError, match=words.replace(".", r"\.")):
        ModelSpec(**fields)


def test_tuned_challengers_join_in_place_and_learn_as_river() -> None:
    data = list(itertools.islice(datasets.Phishing(), 300))
    model = OnlineModel(BASE, Limits())
    for i, (x, y) in enumerate(data[:200]):
        model.process(Event(f"a{i}", "m", dict(x), y), now=float(i))
    first = tuned(**{"tuned-j1-1": GOOD, "tuned-j1-2": {"LogisticRegression.l2": 0.01}})
    assert classify(BASE, first) == "in_place"
    apply_in_place(model, first)
    assert model.n_learned == 200
    assert [c.name for c in model.race.challengers] == ["tuned-j1-1", "tuned-j1-2"]
    reference = preprocessing.StandardScaler() | linear_model.LogisticRegression(
        l2=0.001, optimizer=optim.SGD(0.2)
    )
    for i, (x, y) in enumerate(data[200:]):
        model.process(Event(f"b{i}", "m", dict(x), y), now=300.0 + i)
        reference.learn_one(x, y)
    challenger = model.race.challengers[0]
    assert challenger.n_learned == 100
    probe = data[0][0]
    got, want = challenger.estimator.predict_proba_one(probe), reference.predict_proba_one(probe)
    assert abs(got[True] - want[True]) < 1e-12

    # A later job: the earlier one's leave, but a promoted one stays champion.
    model.race.promote("tuned-j1-2", "admin", metric="Accuracy", n_learned=300, model_version=1)
    second = tuned(**{"tuned-j2-1": GOOD})
    apply_in_place(model, second)
    assert model.race.champion.name == "tuned-j1-2"
    assert [c.name for c in model.race.challengers] == ["default", "tuned-j2-1"]
