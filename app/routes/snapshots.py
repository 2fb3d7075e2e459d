"""Snapshots of a model: take one, list them, roll back to one (admin routes need the token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from app.deps import (
    ADMIN_RESPONSES,
    MODEL_RESPONSES,
    ActionsDep,
    AdminCall,
    DeploymentsDep,
    ModelDep,
    SnapshotsDep,
    admin_action,
)
from app.schemas import ErrorOut, InvalidOut, RestoreOut, SnapshotOut

router = APIRouter(prefix="/models/{name}/snapshots", tags=["snapshots"], responses=MODEL_RESPONSES)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=SnapshotOut, responses=ADMIN_RESPONSES
)
async def create_snapshot(
    call: Annotated[AdminCall, admin_action("snapshot")], model: ModelDep, admin: ActionsDep
) -> SnapshotOut:
    """Admin: snapshot the model now (signed, written atomically, published)."""
    info = await admin.snapshot(model)
    call.detail.update(version=info.version, offsets=info.offsets, bytes=info.bytes)
    return SnapshotOut(**info.public())


@router.get("", response_model=list[SnapshotOut])
async def read_snapshots(model: ModelDep, store: SnapshotsDep) -> list[SnapshotOut]:
    """Versions kept for the model, oldest first, with time, offsets and size."""
    return [SnapshotOut(**store.info(model.name, v).public()) for v in store.versions(model.name)]


@router.post(
    "/{version}/restore",
    response_model=RestoreOut,
    responses={
        **ADMIN_RESPONSES,
        404: {"model": ErrorOut, "description": "No such model, or no snapshot of that version"},
        422: {
            "model": InvalidOut | ErrorOut,
            "description": "The version is not a number (a list naming it), or the snapshot"
            " failed its signature check (a sentence; nothing of it ran)",
        },
    },
)
async def restore_snapshot(
    call: Annotated[AdminCall, admin_action("restore")],
    version: int,
    model: ModelDep,
    admin: ActionsDep,
    deployments: DeploymentsDep,
) -> RestoreOut:
    """Admin: roll the live model back to a snapshot; it keeps learning from here."""
    # A snapshot taken under another spec goes through the registry (see Models).
    other = await deployments.roll_back(model.name, version, call.who.token_fingerprint)
    restored, info = other or await admin.rollback(model.name, version)
    call.detail.update(version=info.version, model_version=restored.model_version)
    return RestoreOut(
        model=restored.name,
        model_version=restored.model_version,
        n_learned=restored.n_learned,
        snapshot=SnapshotOut(**info.public()),
    )
