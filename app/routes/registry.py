"""The model registry: deploy, change and retire models without a restart (admin), and read
each model's spec and its versions."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request

from app.deps import ADMIN_RESPONSES, MODEL_RESPONSES, AdminCall, DeploymentsDep, admin_action
from app.errors import invalid
from app.schemas import ErrorOut, SpecChangeOut, SpecVersionOut
from streams.learning.catalog import SpecVersion, version_from_fields
from streams.learning.errors import InvalidSpec, UnknownModel

router = APIRouter(prefix="/models", tags=["registry"])

#: A model's routes are relayed to its owner, which may be moving (503).
_READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    **MODEL_RESPONSES,
    404: {"model": ErrorOut, "description": "No model of that name is deployed"},
}
_SPEC_EXAMPLE = {
    "task": "binary",
    "pipeline": "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
    "snapshot_every": 10000,
}


def _out(version: SpecVersion) -> SpecVersionOut:
    return SpecVersionOut(**version.public())


_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "the fields of a [models.NAME] table"},
                "example": _SPEC_EXAMPLE,
            }
        },
    }
}


#: How long a spec may take to be built and checked.
SPEC_SECONDS = 5.0
_TEMPLATE_NAME = (
    "name: ':' is kept for the models a template makes (<template>:<key>); deploy or change"
    " the template instead"
)


@router.put(
    "/{name}", response_model=SpecChangeOut, responses=ADMIN_RESPONSES, openapi_extra=_SPEC_BODY
)
async def deploy_model(
    call: Annotated[AdminCall, admin_action("deploy")],
    name: str,
    request: Request,
    deployments: DeploymentsDep,
) -> SpecChangeOut:
    """Admin: deploy a model or a template, or change its spec (the fields of a
    [models.NAME] or [templates.NAME] table)."""
    # Read here, after the token was checked: a caller without it learns nothing of the body.
    try:
        fields: Any = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise invalid(["body"], f"body is not valid JSON: {exc}") from None
    if ":" in name:
        raise invalid(["path", "name"], _TEMPLATE_NAME)
    try:
        # In a thread, with a deadline: some River constructors loop on a huge size argument
        # (tests/fuzz/fuzz_registry.py), which must not hold the node's event loop.
        build = asyncio.to_thread(version_from_fields, name, fields)
        valid, template = await asyncio.wait_for(build, SPEC_SECONDS)
        change = await deployments.put(valid, call.who.token_fingerprint, template)
    except TimeoutError:
        msg = f"pipeline: building the spec took more than {SPEC_SECONDS:g} s; refused"
        raise invalid(["body", "pipeline"], msg) from None
    except InvalidSpec as exc:
        field = exc.field
        loc: list[str | int] = ["body", *field.split(".")] if field else ["body"]
        raise invalid(["path", "name"] if field == "name" else loc, str(exc)) from None
    assert change.new is not None  # a put always leaves a current version
    call.detail.update(version=change.new.version, change=change.kind)
    return SpecChangeOut(**_out(change.new).model_dump(), change=change.kind)


@router.delete("/{name}", response_model=SpecChangeOut, responses=ADMIN_RESPONSES)
async def retire_model(
    call: Annotated[AdminCall, admin_action("retire")], name: str, deployments: DeploymentsDep
) -> SpecChangeOut:
    """Admin: retire a model; its snapshots are kept, its later events dead-lettered."""
    change = await deployments.retire(name)
    assert change.old is not None  # only a deployed model is retired
    call.detail.update(version=change.old.version)
    return SpecChangeOut(**_out(change.old).model_dump(), change=change.kind)


@router.get("/{name}/spec", response_model=SpecVersionOut, responses=_READ_RESPONSES)
async def read_spec(name: str, deployments: DeploymentsDep) -> SpecVersionOut:
    """The current spec of a model, its version, who wrote it and when."""
    current = deployments.catalog.current(name)
    if current is None:
        raise UnknownModel(name)
    return _out(current)


@router.get(
    "/{name}/spec/history",
    response_model=list[SpecVersionOut],
    responses=_READ_RESPONSES,
)
async def read_spec_history(name: str, deployments: DeploymentsDep) -> list[SpecVersionOut]:
    """Every version of a model's spec, the oldest first."""
    versions = deployments.catalog.history(name)
    if not versions:
        raise UnknownModel(name)
    return [_out(v) for v in versions]
