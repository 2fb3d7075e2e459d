"""Model specs: the ``[models.NAME]`` tables of the models file, validated.

Examples
--------
>>> spec = ModelSpec(name="phishing", task="binary",
...                  pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()")
>>> spec.metrics
('Accuracy', 'Precision', 'Recall', 'F1', 'ROCAUC', 'LogLoss')
>>> ModelSpec(name="bad", task="binary", pipeline="linear_model.LinearRegression()")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelSpec
  Value error, pipeline: a binary model needs a classifier, and ... is not one ...
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from river import base

from streams.learning.drift import DriftMonitor
from streams.learning.errors import SpecError
from streams.learning.metrics import ALLOWED, DEFAULTS
from streams.learning.pipeline import parse_estimator

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ModelSpec(BaseModel):
    """One model: its task, its River pipeline, how it is preprocessed, scored and watched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    task: Literal["binary", "multiclass", "regression"]
    pipeline: str
    preprocess: Literal["auto", "none"] = "auto"
    metrics: tuple[str, ...] = ()
    rolling_window: int = Field(default=1000, ge=1)
    drift: tuple[str, ...] = ()
    drift_features: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    drift_policy: Literal["alert", "reset", "retrain"] = "alert"
    snapshot_every: int = Field(default=10_000, ge=1)
    max_categories: int = Field(default=100, ge=1)

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "a model name is 1-64 letters, digits, '_', '-' or '.',"
                " starting with a letter or digit"
            )
        return value

    @model_validator(mode="after")
    def _check_pipeline_and_metrics(self) -> ModelSpec:
        try:
            estimator = parse_estimator(self.pipeline)
        except SpecError as exc:
            raise ValueError(f"pipeline: {exc}") from None
        wants_classifier = self.task != "regression"
        if wants_classifier and not isinstance(estimator, base.Classifier):
            raise ValueError(
                f"pipeline: a {self.task} model needs a classifier,"
                f" and {self.pipeline!r} is not one"
            )
        if not wants_classifier and not isinstance(estimator, base.Regressor):
            raise ValueError(
                f"pipeline: a regression model needs a regressor, and {self.pipeline!r} is not one"
            )
        try:
            DriftMonitor(self.drift, self.drift_features, self.task)
        except SpecError as exc:
            raise ValueError(f"drift: {exc}") from None
        if not self.metrics:
            object.__setattr__(self, "metrics", DEFAULTS[self.task])
        unknown = [m for m in self.metrics if m not in ALLOWED[self.task]]
        if unknown:
            raise ValueError(
                f"metrics: {', '.join(unknown)} not available for a {self.task} model;"
                f" choose from {', '.join(sorted(ALLOWED[self.task]))}"
            )
        return self

    def public(self) -> dict[str, Any]:
        """The spec as it appears in the API."""
        return self.model_dump()


def load_specs(path: Path) -> dict[str, ModelSpec]:
    """Read and validate every ``[models.NAME]`` table of a TOML file.

    Raises :class:`SpecError` with the file, the model and the field at fault.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"models file {path} does not exist (set STREAMLEARN_MODELS)") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path} is not valid TOML: {exc}") from None
    tables = document.get("models")
    if not isinstance(tables, dict) or not tables:
        raise SpecError(f"{path} declares no models: add a [models.NAME] table")
    specs: dict[str, ModelSpec] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise SpecError(f"{path}: models.{name} must be a table")
        try:
            specs[name] = ModelSpec(name=name, **table)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(["models", name, *(str(p) for p in first["loc"])])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise SpecError(f"{path}: {where}: {message}") from None
    return specs
