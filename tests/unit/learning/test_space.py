"""The search space of a tuning job: every refusal names its field, hostile input is refused
with :class:`InvalidSpace` and nothing else, and a trial's values build exactly the pipeline a
user would write by hand."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from river import compose, datasets, ensemble, linear_model, optim, preprocessing, tree

from streams.learning.build import build_estimator
from streams.learning.errors import InvalidSpace, SpecError
from streams.learning.pipeline import parse_estimator
from streams.learning.preprocessing import AutoPreprocessor
from streams.learning.space import Dimension, SearchSpace, parse_space
from streams.learning.spec import ModelSpec

LINEAR = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
TREE = "tree.HoeffdingTreeClassifier()"
BAGGING = (
    "ensemble.BaggingClassifier(model=preprocessing.StandardScaler()"
    " | linear_model.LogisticRegression(), n_models=3, seed=7)"
)
PHISHING = list(itertools.islice(datasets.Phishing(), 300))


def refusal(space: Any, expression: str = LINEAR) -> InvalidSpace:
    with pytest.raises(InvalidSpace) as caught:
        parse_space(space, parse_estimator(expression))
    return caught.value


# Refusals ---------------------------------------------------------------------------------

L2 = "LogisticRegression.l2"


@pytest.mark.parametrize(
    ("space", "expression", "field", "words"),
    [
        (3, LINEAR, "space", ["an object mapping a parameter path", "not a number"]),
        ([], LINEAR, "space", ["not an array"]),
        ({}, LINEAR, "space", ["at least one parameter"]),
        (
            {f"LogisticRegression.p{i}": {"low": 0, "high": 1} for i in range(33)},
            LINEAR,
            "space",
            ["33 dimensions", "32"],
        ),
        ({"X.l2": {"low": 0, "high": 1}}, LINEAR, "space.X.l2", ["no step 'X'", "StandardScaler"]),
        (
            {"LogisticRegression.l3": {"low": 0, "high": 1}},
            LINEAR,
            "space.LogisticRegression.l3",
            ["no parameter 'l3'", "l2", "optimizer"],
        ),
        (
            {"HoeffdingTreeClassifier.grace_period": {"low": 1, "high": 9}},
            TREE,
            "space.HoeffdingTreeClassifier.grace_period",
            ["not a pipeline", "grace_period"],
        ),
        (
            {"LogisticRegression": {"low": 0, "high": 1}},
            LINEAR,
            "space.LogisticRegression",
            ["is a step, not a parameter", "l2"],
        ),
        (
            {"LogisticRegression.l2.x": {"low": 0, "high": 1}},
            LINEAR,
            "space.LogisticRegression.l2.x",
            ["not a River object"],
        ),
        (
            {"LogisticRegression..l2": {"low": 0, "high": 1}},
            LINEAR,
            "space.LogisticRegression..l2",
            ["joined by dots"],
        ),
        (
            {
                "LogisticRegression.optimizer": {"choices": ["x"]},
                "LogisticRegression.optimizer.lr": {"low": 0.1, "high": 1},
            },
            LINEAR,
            "space.LogisticRegression.optimizer.lr",
            ["is a dimension itself"],
        ),
        ({L2: 0.1}, LINEAR, f"space.{L2}", ["a dimension is an object", "not a number"]),
        ({L2: {"low": 0, "hgih": 1}}, LINEAR, f"space.{L2}", ["unknown key 'hgih'", "high"]),
        (
            {L2: {"low": 0, "high": 1, "choices": [0]}},
            LINEAR,
            f"space.{L2}",
            ["range", "or choices, not both"],
        ),
        ({L2: {"log": True}}, LINEAR, f"space.{L2}.low", ["needs both low and high"]),
        ({L2: {}}, LINEAR, f"space.{L2}", ["needs low and high, or choices"]),
        ({L2: {"low": 0.1, "high": 0.1}}, LINEAR, f"space.{L2}.high", ["empty range"]),
        ({L2: {"low": 1, "high": 0}}, LINEAR, f"space.{L2}.high", ["empty range"]),
        ({L2: {"choices": []}}, LINEAR, f"space.{L2}.choices", ["at least one choice"]),
        ({L2: {"choices": 0.1}}, LINEAR, f"space.{L2}.choices", ["a list of values"]),
        ({L2: {"choices": [0.1, 0.2, 0.1]}}, LINEAR, f"space.{L2}.choices.2", ["listed twice"]),
        ({L2: {"choices": [[0.1]]}}, LINEAR, f"space.{L2}.choices.0", ["not an array"]),
        ({L2: {"choices": list(range(51))}}, LINEAR, f"space.{L2}.choices", ["51 choices"]),
        ({L2: {"choices": [float("inf")]}}, LINEAR, f"space.{L2}.choices.0", ["finite"]),
        ({L2: {"choices": ["x" * 300]}}, LINEAR, f"space.{L2}.choices.0", ["at most 256"]),
        ({L2: {"low": float("nan"), "high": 1}}, LINEAR, f"space.{L2}.low", ["finite"]),
        ({L2: {"low": 0, "high": float("inf")}}, LINEAR, f"space.{L2}.high", ["finite"]),
        ({L2: {"low": 0, "high": 1e16}}, LINEAR, f"space.{L2}.high", ["1e15"]),
        ({L2: {"low": -(10**400), "high": 1}}, LINEAR, f"space.{L2}.low", ["1e15"]),
        ({L2: {"low": True, "high": 1}}, LINEAR, f"space.{L2}.low", ["a number", "true/false"]),
        ({L2: {"low": None, "high": 1}}, LINEAR, f"space.{L2}.low", ["a number", "null"]),
        ({L2: {"low": 0, "high": "1"}}, LINEAR, f"space.{L2}.high", ["a number", "a string"]),
        ({L2: {"low": 0, "high": 1, "log": 1}}, LINEAR, f"space.{L2}.log", ["true or false"]),
        ({L2: {"low": 0, "high": 1, "log": True}}, LINEAR, f"space.{L2}.low", ["log", "above 0"]),
        ({L2: {"low": 0, "high": 1, "step": 0}}, LINEAR, f"space.{L2}.step", ["above 0"]),
        ({L2: {"low": 0, "high": 1, "step": -0.5}}, LINEAR, f"space.{L2}.step", ["above 0"]),
        ({L2: {"low": 0, "high": 1, "step": 2}}, LINEAR, f"space.{L2}.step", ["larger than"]),
        ({L2: {"low": 0, "high": 1, "step": 0.01}}, LINEAR, f"space.{L2}.step", ["more than 50"]),
        ({L2: {"low": 0, "high": 1, "step": 0.3}}, LINEAR, f"space.{L2}.step", ["multiple"]),
        (
            {L2: {"low": 0.1, "high": 1, "step": 0.1, "log": True}},
            LINEAR,
            f"space.{L2}.step",
            ["log range takes no step"],
        ),
        (
            {L2: {"low": 0, "high": 1, "step": 0.5, "points": 3}},
            LINEAR,
            f"space.{L2}.points",
            ["drop points or step"],
        ),
        ({L2: {"low": 0, "high": 1, "points": 1}}, LINEAR, f"space.{L2}.points", ["2 to 20"]),
        ({L2: {"low": 0, "high": 1, "points": 21}}, LINEAR, f"space.{L2}.points", ["2 to 20"]),
        ({L2: {"low": 0, "high": 1, "points": 2.0}}, LINEAR, f"space.{L2}.points", ["integer"]),
        (
            {"grace_period": {"low": 1, "high": 2 * 10**9}},
            TREE,
            "space.grace_period.high",
            ["1,000,000,000"],
        ),
        (
            {"grace_period": {"low": 1, "high": 10**6}},
            TREE,
            "space.grace_period",
            ["over 100,000"],
        ),
        (
            {"n_models": {"low": 2, "high": 5000}},
            BAGGING,
            "space.n_models",
            ["n_models=5000", "over 1,000"],
        ),
        (
            {"n_models": {"low": 1, "high": 5}},
            BAGGING,
            "space.n_models",
            ["River refused 1", "At least 2 models"],
        ),
        (
            {"LogisticRegression.l1": {"choices": [0.0, 0.1]}},
            "linear_model.LogisticRegression(l2=0.1) | preprocessing.StandardScaler()",
            "space.LogisticRegression.l1",
            ["River refused 0.1", "L1 and L2"],
        ),
    ],
)
def test_refusals_name_the_field_and_what_is_allowed(
    space: Any, expression: str, field: str, words: list[str]
) -> None:
    error = refusal(space, expression)
    assert error.field == field
    message = str(error)
    assert message.startswith(f"{field}: ")
    for word in words:
        assert word in message, message


def test_an_invalid_space_is_a_spec_error_answered_as_422() -> None:
    assert issubclass(InvalidSpace, SpecError)
    assert issubclass(InvalidSpace, ValueError)


# Hostile input ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["gini", "info_gain", "nba", "mc"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)
NUMBER = (
    st.integers(-(10**16), 10**16)
    | st.integers(-3, 1000)
    | st.floats()
    | st.floats(-2, 1000)
    | st.sampled_from([0, 1, 2, 50, 500, 1e-9, 0.5, 1e15, 10**9])
)
RANGE = st.fixed_dictionaries(
    {"low": NUMBER, "high": NUMBER},
    optional={
        "log": st.booleans() | JSON,
        "step": NUMBER | st.none(),
        "points": st.integers(-5, 30) | JSON,
    },
)
CHOICES = st.fixed_dictionaries(
    {"choices": st.lists(NUMBER | st.booleans() | st.none() | st.text(max_size=5), max_size=8)}
)
DIMENSION = (
    RANGE
    | CHOICES
    | st.dictionaries(
        st.sampled_from(["low", "high", "log", "step", "points", "choices", "hgih"]),
        NUMBER | st.booleans() | st.none() | st.lists(JSON, max_size=6) | JSON,
        max_size=5,
    )
)
PATHS = st.sampled_from(
    [
        "LogisticRegression.l2",
        "LogisticRegression.optimizer.lr",
        "LogisticRegression.optimizer.lr.learning_rate",
        "LogisticRegression.loss.weight_pos",
        "LogisticRegression.clip_gradient",
        "StandardScaler.with_std",
        "StandardScaler.window_size",
    ]
)
HOSTILE = settings(
    max_examples=150,
    deadline=5000,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
ESTIMATOR = parse_estimator(LINEAR)


def parses_or_refuses(space: Any) -> None:
    try:
        parsed = parse_space(space, ESTIMATOR)
    except InvalidSpace as error:
        assert error.field == "space" or error.field.startswith("space.")
        return
    json.dumps(parsed.public())
    for values in itertools.islice(itertools.product(*parsed.grid().values()), 3):
        parsed.clone_params(dict(zip(parsed.dimensions, values, strict=True)))


@HOSTILE
@given(JSON)
def test_any_json_as_the_space_is_parsed_or_refused(space: Any) -> None:
    parses_or_refuses(space)


@HOSTILE
@given(st.dictionaries(PATHS, JSON, max_size=3))
def test_any_json_as_a_dimension_is_parsed_or_refused(space: Any) -> None:
    parses_or_refuses(space)


@HOSTILE
@given(st.dictionaries(PATHS, DIMENSION, min_size=1, max_size=3))
def test_any_dimension_shaped_object_is_parsed_or_refused(space: Any) -> None:
    parses_or_refuses(space)


@HOSTILE
@given(
    st.sampled_from(["grace_period", "delta", "tau", "max_depth", "split_criterion"]),
    DIMENSION,
)
def test_a_tree_dimension_is_parsed_or_refused(path: str, dimension: Any) -> None:
    try:
        parse_space({path: dimension}, parse_estimator(TREE))
    except InvalidSpace as error:
        assert error.field.startswith(f"space.{path}")


# The grid ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dimension", "points", "expected"),
    [
        ({"choices": ["gini", "info_gain", None, 3]}, 5, ["gini", "info_gain", None, 3]),
        ({"low": 50, "high": 500, "step": 150}, 5, [50, 200, 350, 500]),
        ({"low": 0, "high": 1, "step": 0.1}, 5, [round(0.1 * i, 1) for i in range(11)]),
        ({"low": 0, "high": 0.01}, 3, [0.0, 0.005, 0.01]),
        ({"low": 0.0, "high": 1}, 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
        ({"low": 0.0, "high": 1, "points": 3}, 5, [0.0, 0.5, 1.0]),
        ({"low": 0, "high": 1}, 5, [0, 1]),
        ({"low": 0.001, "high": 10, "log": True}, 5, [0.001, 0.01, 0.1, 1.0, 10.0]),
        ({"low": 1, "high": 1000, "log": True, "points": 4}, 5, [1, 10, 100, 1000]),
        ({"low": 1, "high": 4, "points": 10}, 5, [1, 2, 3, 4]),
        ({"low": 10, "high": 20}, 5, [10, 12, 15, 18, 20]),
    ],
)
def test_the_grid_of_each_dimension(dimension: Any, points: int, expected: list[Any]) -> None:
    space = parse_space({"LogisticRegression.l2": dimension}, ESTIMATOR)
    assert space.grid(default_points=points) == {"LogisticRegression.l2": expected}


def test_integer_and_float_ranges_are_told_apart() -> None:
    space = parse_space(
        {
            "LogisticRegression.l2": {"low": 0.0, "high": 1},
            "LogisticRegression.clip_gradient": {"low": 10, "high": 100, "step": 10},
            "LogisticRegression.intercept_init": {"low": 0, "high": 1, "step": 0.5},
            "LogisticRegression.intercept_lr.learning_rate": {"choices": [0.1, 1]},
        },
        ESTIMATOR,
    )
    kinds = {path: d.kind for path, d in space.dimensions.items()}
    assert kinds == {
        "LogisticRegression.clip_gradient": "int",
        "LogisticRegression.intercept_init": "float",
        "LogisticRegression.intercept_lr.learning_rate": "choice",
        "LogisticRegression.l2": "float",
    }
    assert list(space.dimensions) == sorted(space.dimensions)
    assert space.dimensions["LogisticRegression.l2"] == Dimension("float", 0.0, 1.0)
    assert space.dimensions["LogisticRegression.intercept_init"].step == 0.5
    public = space.public()
    assert json.loads(json.dumps(public)) == public
    assert public["LogisticRegression.clip_gradient"] == {
        "kind": "int",
        "low": 10,
        "high": 100,
        "log": False,
        "step": 10,
        "points": None,
    }


# Building a trial's estimator -------------------------------------------------------------


def same_predictions(built: Any, by_hand: Any) -> None:
    """Both estimators predict the same on every event, learning as they go."""
    assert repr(built) == repr(by_hand)
    for x, y in PHISHING:
        assert built.predict_proba_one(x) == by_hand.predict_proba_one(x)
        built.learn_one(x, y)
        by_hand.learn_one(x, y)


def test_nested_parameters_build_the_pipeline_written_by_hand() -> None:
    expression = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
    space = parse_space(
        {
            "LogisticRegression.l2": {"low": 0, "high": 0.01},
            "LogisticRegression.optimizer.lr": {"low": 0.001, "high": 1, "log": True},
            "LogisticRegression.intercept_lr.learning_rate": {"low": 0.001, "high": 0.1},
            "StandardScaler.with_std": {"choices": [True, False]},
        },
        parse_estimator(expression),
    )
    values = {
        "LogisticRegression.l2": 0.001,
        "LogisticRegression.optimizer.lr": 0.3,
        "LogisticRegression.intercept_lr.learning_rate": 0.05,
        "StandardScaler.with_std": False,
    }
    by_hand = preprocessing.StandardScaler(with_std=False) | linear_model.LogisticRegression(
        l2=0.001, optimizer=optim.SGD(lr=0.3), intercept_lr=0.05
    )
    same_predictions(space.build(expression, values), by_hand)


def test_unnamed_parameters_of_a_nested_object_are_kept() -> None:
    expression = "linear_model.LogisticRegression(optimizer=optim.Adam(beta_1=0.8), l2=0.01)"
    space = parse_space({"optimizer.lr": {"low": 0.01, "high": 0.5}}, parse_estimator(expression))
    by_hand = linear_model.LogisticRegression(optimizer=optim.Adam(lr=0.05, beta_1=0.8), l2=0.01)
    same_predictions(space.build(expression, {"optimizer.lr": 0.05}), by_hand)


def test_a_tree_and_a_union_and_an_ensemble_build_as_written_by_hand() -> None:
    space = parse_space(
        {
            "grace_period": {"low": 50, "high": 500, "step": 50},
            "split_criterion": {"choices": ["gini", "info_gain", "hellinger"]},
        },
        parse_estimator(TREE),
    )
    values = {"grace_period": 50, "split_criterion": "gini"}
    by_hand = tree.HoeffdingTreeClassifier(grace_period=50, split_criterion="gini")
    same_predictions(space.build(TREE, values), by_hand)

    union = (
        "(preprocessing.StandardScaler() + preprocessing.MinMaxScaler())"
        " | tree.HoeffdingTreeClassifier()"
    )
    space = parse_space(
        {
            "TransformerUnion.StandardScaler.with_std": {"choices": [True, False]},
            "HoeffdingTreeClassifier.grace_period": {"low": 20, "high": 200},
        },
        parse_estimator(union),
    )
    values = {
        "TransformerUnion.StandardScaler.with_std": False,
        "HoeffdingTreeClassifier.grace_period": 20,
    }
    by_hand = compose.TransformerUnion(
        preprocessing.StandardScaler(with_std=False), preprocessing.MinMaxScaler()
    ) | tree.HoeffdingTreeClassifier(grace_period=20)
    same_predictions(space.build(union, values), by_hand)

    space = parse_space(
        {
            "model.LogisticRegression.optimizer.lr": {"low": 0.01, "high": 1},
            "n_models": {"low": 2, "high": 6},
        },
        parse_estimator(BAGGING),
    )
    values = {"model.LogisticRegression.optimizer.lr": 0.2, "n_models": 4}
    by_hand = ensemble.BaggingClassifier(
        model=preprocessing.StandardScaler()
        | linear_model.LogisticRegression(optimizer=optim.SGD(lr=0.2)),
        n_models=4,
        seed=7,
    )
    same_predictions(space.build(BAGGING, values), by_hand)


def test_clone_params_go_through_build_estimator_in_one_clone() -> None:
    spec = ModelSpec(name="m", task="binary", pipeline=LINEAR)
    space = parse_space(
        {"LogisticRegression.optimizer.lr": {"low": 0.01, "high": 1}}, parse_estimator(LINEAR)
    )
    params = space.clone_params({"LogisticRegression.optimizer.lr": 0.4})
    assert params == {"LogisticRegression": {"optimizer": (optim.SGD, {"lr": 0.4})}}
    by_hand = AutoPreprocessor(max_categories=spec.max_categories) | (
        preprocessing.StandardScaler()
        | linear_model.LogisticRegression(optimizer=optim.SGD(lr=0.4))
    )
    same_predictions(build_estimator(spec, LINEAR, params), by_hand)


def test_parsing_leaves_the_estimator_as_it_was() -> None:
    estimator = parse_estimator(LINEAR)
    before = repr(estimator)
    parse_space({"LogisticRegression.optimizer.lr": {"choices": [0.5, 2.0]}}, estimator)
    assert repr(estimator) == before


def test_clone_params_refuses_a_path_outside_the_space() -> None:
    space = parse_space({"LogisticRegression.l2": {"low": 0, "high": 1}}, ESTIMATOR)
    with pytest.raises(KeyError, match=r"no dimension 'LogisticRegression\.l1'"):
        space.clone_params({"LogisticRegression.l1": 0.1})
    assert isinstance(space, SearchSpace)
