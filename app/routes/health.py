"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import OwnershipDep
from app.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def read_health() -> HealthOut:
    """The process is up and serving."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def read_readiness(ownership: OwnershipDep) -> HealthOut | JSONResponse:
    """The node has joined its group and restored the models it holds (503 until then);
    which partitions and models it holds."""
    ready, detail = ownership.ready()
    out = HealthOut(
        status="ready" if ready else "not ready",
        detail=detail,
        node=ownership.url,
        partitions=[f"{p.topic}:{p.partition}" for p in ownership.partitions()],
        models=ownership.live(),
    )
    if not ready:
        return JSONResponse(out.model_dump(), status_code=503)
    return out
