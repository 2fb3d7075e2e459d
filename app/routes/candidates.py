"""The leaderboard of a model: its champion and challengers; promotion (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter

from app.deps import (
    ADMIN_RESPONSES,
    MODEL_RESPONSES,
    ActionsDep,
    AdminCall,
    ModelDep,
    admin_action,
)
from app.schemas import ErrorOut

router = APIRouter(
    prefix="/models/{name}/candidates", tags=["candidates"], responses=MODEL_RESPONSES
)


@router.get("")
async def read_candidates(model: ModelDep) -> dict[str, Any]:
    """Every candidate's cumulative and rolling metrics, events seen, time per event, memory."""
    return {
        "model": model.name,
        "champion": model.champion,
        "model_version": model.model_version,
        "promotion_metric": model.spec.ranked_by,
        "candidates": model.leaderboard(),
    }


@router.post(
    "/{candidate}/promote",
    responses={
        **ADMIN_RESPONSES,
        404: {"model": ErrorOut, "description": "No such model, or it has no such challenger"},
    },
)
async def promote_candidate(
    call: Annotated[AdminCall, admin_action("promote")],
    candidate: str,
    model: ModelDep,
    admin: ActionsDep,
) -> dict[str, Any]:
    """Admin: make a challenger the champion (the old champion is snapshotted first)."""
    record = await admin.promote(model.name, candidate)
    kept = ("from", "to", "snapshot_before", "model_version")
    call.detail.update({key: record[key] for key in kept if key in record})
    return record
