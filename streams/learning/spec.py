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

``alert_below`` sets, per metric, the rolling value under which Prometheus alerts:

>>> ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()",
...           alert_below={"MAE": 2.0})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ModelSpec
  Value error, alert_below: MAE is better when smaller, ... choose among R2 ...
"""

from __future__ import annotations

import inspect
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    ValidationError,
    field_validator,
    model_validator,
)
from river import base
from river import metrics as river_metrics

from streams.learning.candidates import expand_grid
from streams.learning.drift import DriftMonitor
from streams.learning.errors import SpecError
from streams.learning.metrics import ALLOWED, DEFAULTS
from streams.learning.pipeline import parse_estimator
from streams.learning.space import parse_space

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SearchSpec(BaseModel):
    """A grid over the champion pipeline's parameters, raced as challengers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grid: dict[str, list[Any]]
    budget: int = Field(default=4, ge=1, le=64)
    seed: int = 42


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
    drift_policy: Literal["alert", "reset", "retrain", "promote"] = "alert"
    challengers: dict[str, str] = Field(default_factory=dict)
    search: SearchSpec | None = None
    promotion_metric: str | None = None
    promotion_margin: float = Field(default=0.01, ge=0)
    auto_promote: bool = False
    snapshot_every: int = Field(default=10_000, ge=1)
    max_categories: int = Field(default=100, ge=1)
    max_features: int = Field(default=10_000, ge=1, le=10_000_000)
    #: Metric name -> the rolling value under which an alert fires (deploy/prometheus).
    alert_below: dict[str, FiniteFloat] = Field(default_factory=dict)
    #: How many of a tuning job's best configurations join the race when the job is done.
    challengers_from_tuning: int = Field(default=0, ge=0, le=8)
    #: The challengers a tuning job found: name -> {parameter path: value} (written by the
    #: node when the job is done; they join the live race in place).
    tuned: dict[str, dict[str, Any]] = Field(default_factory=dict)

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
        for name, expression in self.challengers.items():
            if not _NAME.match(name) or name.startswith(("search-", "tuned-")):
                raise ValueError(f"challengers: {name!r} is not a valid candidate name")
            try:
                self._check_fits(f"challengers.{name}", parse_estimator(expression))
            except SpecError as exc:
                raise ValueError(f"challengers.{name}: {exc}") from None
        if self.search is not None:
            for name, params in expand_grid(
                self.search.grid, self.search.budget, self.search.seed
            ).items():
                try:
                    _check_params(estimator, params)
                    estimator.clone(params)
                except Exception as exc:  # River's refusals come in every kind
                    raise ValueError(
                        f"search: {name} {params} does not fit the pipeline: {exc}"
                    ) from None
        for name, values in self.tuned.items():
            if not _NAME.match(name) or not name.startswith("tuned-"):
                raise ValueError(f"tuned: {name!r} is not a valid name (tuned-...)")
            try:
                tuned_params(estimator, values)
            except SpecError as exc:
                raise ValueError(f"tuned.{name}.{str(exc).removeprefix('space.')}") from None
        if not self.metrics:
            object.__setattr__(self, "metrics", DEFAULTS[self.task])
        if self.promotion_metric is not None and self.promotion_metric not in self.metrics:
            raise ValueError(
                f"promotion_metric: {self.promotion_metric} is not among {self.metrics}"
            )
        unknown = [m for m in self.metrics if m not in ALLOWED[self.task]]
        if unknown:
            raise ValueError(
                f"metrics: {', '.join(unknown)} not available for a {self.task} model;"
                f" choose from {', '.join(sorted(ALLOWED[self.task]))}"
            )
        self._check_alert_below()
        return self

    def _check_alert_below(self) -> None:
        """Each threshold names one of the model's metrics, one that is better when bigger
        (a falling MAE is good news, not an alert)."""
        rising = [m for m in self.metrics if getattr(river_metrics, m)().bigger_is_better]
        for metric in self.alert_below:
            if metric not in self.metrics:
                raise ValueError(
                    f"alert_below: {metric} is not among the model's metrics"
                    f" {', '.join(self.metrics)}"
                )
            if metric not in rising:
                raise ValueError(
                    f"alert_below: {metric} is better when smaller, so falling below a value"
                    f" is no alarm; choose among {', '.join(rising) or 'none of them'}"
                )

    def _check_fits(self, where: str, estimator: Any) -> None:
        if self.task != "regression" and not isinstance(estimator, base.Classifier):
            raise ValueError(
                f"{where}: a {self.task} model needs a classifier, and this is not one"
            )
        if self.task == "regression" and not isinstance(estimator, base.Regressor):
            raise ValueError(f"{where}: a regression model needs a regressor, and this is not one")

    @property
    def ranked_by(self) -> str:
        """The metric challengers are ranked and promoted by."""
        return self.promotion_metric or self.metrics[0]

    def candidate_pipelines(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every challenger by name: its pipeline expression and the parameters to clone with."""
        out: dict[str, tuple[str, dict[str, Any]]] = {
            name: (expression, {}) for name, expression in self.challengers.items()
        }
        if self.search is not None:
            grid = expand_grid(self.search.grid, self.search.budget, self.search.seed)
            out.update({name: (self.pipeline, params) for name, params in grid.items()})
        if self.tuned:
            estimator = parse_estimator(self.pipeline)
            for name, values in self.tuned.items():
                out[name] = (self.pipeline, tuned_params(estimator, values))
        return out

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
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path} nests arrays or tables too deeply to read") from None
    tables = document.get("models")
    if not isinstance(tables, dict) or not tables:
        raise SpecError(f"{path} declares no models: add a [models.NAME] table")
    specs: dict[str, ModelSpec] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise SpecError(f"{path}: models.{name} must be a table")
        if "name" in table:
            raise SpecError(
                f"{path}: models.{name}.name: a model is named by its table, [models.NAME]"
            )
        try:
            specs[name] = ModelSpec(name=name, **table)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(["models", name, *(str(p) for p in first["loc"])])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise SpecError(f"{path}: {where}: {message}") from None
    return specs


def tuned_params(estimator: Any, values: Any) -> dict[str, Any]:
    """The clone parameters of a configuration a tuning job found, ``{path: value}``, checked
    against ``estimator`` as a tuning job's search space is; :class:`SpecError` if it does not
    fit."""
    if not isinstance(values, dict) or not values:
        raise SpecError("a tuned configuration is an object of parameter path -> value")
    space = parse_space({path: {"choices": [value]} for path, value in values.items()}, estimator)
    return space.clone_params(values)


def _check_params(estimator: Any, params: dict[str, Any]) -> None:
    """Refuse parameters the estimator (or the named pipeline step) does not take."""
    steps = getattr(estimator, "steps", None)
    for key, value in params.items():
        if isinstance(value, dict) and steps is not None:
            if key not in steps:
                raise KeyError(f"the pipeline has no step {key!r}; steps: {', '.join(steps)}")
            _check_params(steps[key], value)
        elif key not in inspect.signature(type(estimator)).parameters:
            raise KeyError(f"{type(estimator).__name__} takes no parameter {key!r}")
