"""Tuning a model on its own history: start a job (admin), follow it, stop it (admin)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.deps import ADMIN_RESPONSES, MODEL_RESPONSES, AdminCall, ModelDep, admin_action
from app.errors import invalid
from app.schemas import ErrorOut
from streams.learning.errors import SpecError
from streams.tuning.jobs import TuningJobs
from streams.tuning.progress import now
from streams.tuning.request import TuneRequest, check_request

router = APIRouter(prefix="/models/{name}/tune", tags=["tuning"], responses=MODEL_RESPONSES)

#: How long checking a search space against the pipeline may take (River constructors).
CHECK_SECONDS = 5.0
_JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such model, or it has no such job"},
}
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": TuneRequest.model_json_schema()}},
    }
}


async def get_jobs(request: Request) -> TuningJobs:
    jobs: TuningJobs = request.app.state.tuning
    return jobs


JobsDep = Annotated[TuningJobs, Depends(get_jobs)]


def _field_loc(field: str | None, tune: TuneRequest) -> list[str | int]:
    """``space.LogisticRegression.l2.high`` as ``["space", "LogisticRegression.l2", "high"]``:
    a parameter path is one key of the space, dots and all."""
    if not field:
        return []
    head, _, rest = field.partition(".")
    if head != "space" or not rest:
        return [head, *([rest] if rest else [])]
    paths = sorted((p for p in tune.space if rest == p or rest.startswith(f"{p}.")), key=len)
    if not paths:
        return [head, rest]
    path = paths[-1]
    tail = rest.removeprefix(path).removeprefix(".")
    return [head, path, *tail.split(".")] if tail else [head, path]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        **ADMIN_RESPONSES,
        202: {"description": "The job started: its first progress (state `reading`)"},
        409: {
            "model": ErrorOut,
            "description": "The model has a tuning job running already, or the node runs as"
            " many as it may (2)",
        },
    },
    openapi_extra=_BODY,
)
async def start_tuning(
    call: Annotated[AdminCall, admin_action("tune")],
    model: ModelDep,
    request: Request,
    jobs: JobsDep,
) -> JSONResponse:
    """Admin: tune the model's pipeline on its last labelled events, in a process of its own
    (Optuna's TPE, random or grid search; progressive validation or prequential k-fold)."""
    try:  # read after the token was checked, like every admin body
        fields: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise invalid(["body"], f"body is not valid JSON: {exc}") from None
    try:
        tune = TuneRequest.model_validate(fields)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ["body", *e["loc"]]} for e in exc.errors(include_url=False)]
        ) from None
    try:
        # In a thread, with a deadline: the space is tried on River's constructors.
        check = asyncio.to_thread(check_request, tune, model.spec, model.n_learned)
        metric, _ = await asyncio.wait_for(check, CHECK_SECONDS)
    except TimeoutError:
        raise invalid(["body", "space"], "space: checking it took too long; refused") from None
    except SpecError as exc:
        field = getattr(exc, "field", None)
        loc: list[str | int] = (
            ["path", "name"] if field == "name" else ["body", *_field_loc(field, tune)]
        )
        raise invalid(loc, str(exc)) from None
    spec = model.spec.model_dump(mode="json")
    progress = jobs.start(model.name, tune.describe("", model.name, spec, metric, now()))
    call.detail.update(job=progress["job"])
    return JSONResponse(progress, status_code=status.HTTP_202_ACCEPTED)


@router.get("")
async def list_tuning_jobs(model: ModelDep, jobs: JobsDep) -> list[dict[str, Any]]:
    """The model's tuning jobs kept on its node, the newest first (without their trials)."""
    return jobs.summaries(model.name)


@router.get("/{job}", responses=_JOB_RESPONSES)
async def read_tuning_job(job: str, model: ModelDep, jobs: JobsDep) -> dict[str, Any]:
    """A job: its state, every finished trial (parameters, score, folds), the best so far."""
    return jobs.get(model.name, job)


@router.delete("/{job}", responses={**ADMIN_RESPONSES, **_JOB_RESPONSES})
async def stop_tuning_job(
    call: Annotated[AdminCall, admin_action("stop_tuning")],
    job: str,
    model: ModelDep,
    jobs: JobsDep,
) -> dict[str, Any]:
    """Admin: stop a job; the trials it finished are kept."""
    progress = await jobs.stop(model.name, job)
    call.detail.update(state=progress["state"], n_done=progress["n_done"])
    return progress
