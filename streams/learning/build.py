"""A model's River estimators, built from its spec, and described for the API.

Examples
--------
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="binary", pipeline="linear_model.LogisticRegression()")
>>> describe_pipeline(build_estimator(spec))["steps"]
['AutoPreprocessor', 'LogisticRegression']
"""

from __future__ import annotations

from typing import Any

from streams.learning.pipeline import parse_estimator
from streams.learning.preprocessing import AutoPreprocessor
from streams.learning.spec import ModelSpec


def build_estimator(
    spec: ModelSpec, pipeline_expression: str | None = None, params: dict[str, Any] | None = None
) -> Any:
    """A fresh River estimator for ``spec`` (or one of its challengers): the pipeline, cloned
    with ``params`` if given, behind the auto stage if asked."""
    pipeline = parse_estimator(pipeline_expression or spec.pipeline)
    if params:
        pipeline = pipeline.clone(params)
    if spec.preprocess == "auto":
        return AutoPreprocessor(max_categories=spec.max_categories) | pipeline
    return pipeline


def describe_pipeline(estimator: Any) -> dict[str, Any]:
    """The built pipeline: each step, and what the auto stage does per feature."""
    steps = getattr(estimator, "steps", None)
    names = list(steps) if steps else [type(estimator).__name__]
    described: dict[str, Any] = {"steps": names, "repr": repr(estimator)}
    if steps:
        for step in steps.values():
            if isinstance(step, AutoPreprocessor):
                described["auto"] = step.describe()
    return described


def check_label(label: Any, task: str, model: str) -> str | None:
    """Why ``label`` does not fit a ``task`` model, or ``None`` when it does."""
    if task == "regression":
        ok = isinstance(label, int | float) and not isinstance(label, bool)
        expected = "a number"
    elif task == "binary":
        ok = isinstance(label, bool) or (type(label) is int and label in (0, 1))
        expected = "true/false (or 0/1)"
    else:
        ok = isinstance(label, str | int) and not isinstance(label, float)
        expected = "a class: a string, an integer or a bool"
    if ok:
        return None
    return f"label {label!r} does not fit {model!r}, a {task} model: expected {expected}"
