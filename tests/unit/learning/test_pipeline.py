from __future__ import annotations

import pytest
from river import compose, linear_model, optim

from streams.learning.errors import SpecError
from streams.learning.pipeline import parse_estimator


def test_nested_river_objects_and_literals_are_built() -> None:
    model = parse_estimator(
        "preprocessing.StandardScaler() | linear_model.LogisticRegression("
        "optimizer=optim.SGD(0.05), l2=-0.0, loss=optim.losses.Hinge())"
    )
    assert isinstance(model, compose.Pipeline)
    lr = model.steps["LogisticRegression"]
    assert isinstance(lr, linear_model.LogisticRegression)
    assert isinstance(lr.optimizer, optim.SGD)
    assert lr.optimizer.learning_rate == 0.05
    assert type(lr.loss).__name__ == "Hinge"


def test_union_with_plus_is_allowed() -> None:
    model = parse_estimator(
        "(preprocessing.StandardScaler() + preprocessing.MinMaxScaler())"
        " | linear_model.LinearRegression()"
    )
    assert isinstance(model, compose.Pipeline)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "only River classes can be called"),
        ("os.system('id')", "not in an allowed River package"),
        ("open('/etc/passwd')", "only River classes can be called, not 'open'"),
        ("linear_model.LogisticRegression(l2=x)", "arguments must be literals or River objects"),
        ("linear_model.LogisticRegression(**{'l2': 1})", "'**' arguments are not allowed"),
        ("linear_model.LogisticRegression(l2=(lambda: 1)())", "only River classes can be called"),
        ("linear_model.DoesNotExist()", "River has no 'linear_model.DoesNotExist'"),
        ("linear_model._private()", "private names are not allowed"),
        ("linear_model.LogisticRegression(foo=1)", "refused its arguments"),
        ("preprocessing.StandardScaler() |", "not a valid expression"),
        ("datasets.Phishing()", "not in an allowed River package"),
        ("linear_model.LogisticRegression.__subclasses__()", "private names are not allowed"),
        ("[linear_model.LogisticRegression()]", "expected a River class call"),
        ("linear_model.LogisticRegression() - 1", "expected a River class call"),
        ("stats.Mean()", "builds a Mean, not a Estimator"),
    ],
)
def test_anything_but_river_classes_with_literals_is_refused(expression: str, message: str) -> None:
    with pytest.raises(SpecError, match=None) as info:
        parse_estimator(expression)
    assert message in str(info.value)
