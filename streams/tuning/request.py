"""What a tuning job is asked to do (the body of ``POST /models/{name}/tune``), and its
limits.

Examples
--------
>>> TuneRequest(space={"LogisticRegression.l2": {"low": 0.0, "high": 0.01}}).sampler
'tpe'
>>> TuneRequest(space={}, budget=MAX_BUDGET + 1)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for TuneRequest
budget
  Input should be less than or equal to 200 ...
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.learning.errors import InvalidSpec
from streams.learning.metrics import ALLOWED
from streams.learning.pipeline import parse_estimator
from streams.learning.space import SearchSpace, parse_space
from streams.learning.spec import ModelSpec

#: The most trials a job may run.
MAX_BUDGET = 200
#: The most labelled events a window may hold (the job's process keeps them in memory).
MAX_WINDOW = 100_000
#: The most folds of prequential cross-validation.
MAX_FOLDS = 10


class TuneRequest(BaseModel):
    """A tuning job: which configurations to try, how, on how much history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Parameter path (``Step.param``, ``Step.param.sub``) -> a range or choices.
    space: dict[str, Any] = Field(
        examples=[{"LogisticRegression.l2": {"low": 0.0, "high": 0.01}}],
        description="parameter path -> {low, high, log?, step?, points?} or {choices}",
    )
    #: ``tpe``: Bayesian optimisation (Optuna's TPE); ``random``; ``grid``.
    sampler: Literal["tpe", "random", "grid"] = "tpe"
    budget: int = Field(default=20, ge=1, le=MAX_BUDGET, description="trials to run")
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    #: The model's last ``window`` labelled events, as the node learned them.
    window: int = Field(default=1_000, ge=10, le=MAX_WINDOW)
    #: The metric trials are ranked by (default: the model's promotion metric).
    metric: str | None = None
    #: 1: progressive validation; 2 to 10: prequential k-fold cross-validation.
    folds: int = Field(default=1, ge=1, le=MAX_FOLDS)

    def describe(self, job: str, model: str, spec: dict[str, Any], metric: str,
                 created: str) -> dict[str, Any]:  # fmt: skip
        """The job's ``request.json``."""
        return {
            "job": job,
            "model": model,
            "spec": spec,
            "space": self.space,
            "sampler": self.sampler,
            "budget": self.budget,
            "seed": self.seed,
            "window": self.window,
            "metric": metric,
            "folds": self.folds,
            "created": created,
        }


def check_request(request: TuneRequest, spec: ModelSpec, n_learned: int) -> tuple[str, SearchSpace]:
    """The metric the job ranks by and its search space, checked against the model:
    :class:`InvalidSpec` (or :class:`~streams.learning.errors.InvalidSpace`) names the field
    at fault, relative to the request's body."""
    if ":" in spec.name:
        raise InvalidSpec(
            f"model {spec.name!r} is made by a template; tuning is for deployed models", "name"
        )
    metric = request.metric or spec.ranked_by
    if metric not in ALLOWED[spec.task]:
        raise InvalidSpec(
            f"metric: {metric} is not a metric of a {spec.task} model; choose from"
            f" {', '.join(sorted(ALLOWED[spec.task]))}",
            "metric",
        )
    space = parse_space(request.space, parse_estimator(spec.pipeline))
    if request.window > n_learned:
        raise InvalidSpec(
            f"window: model {spec.name!r} has learned {n_learned} labelled events, and its"
            f" history holds no more; ask for a window of at most {n_learned}",
            "window",
        )
    return metric, space
