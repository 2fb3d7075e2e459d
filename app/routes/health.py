"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import NodeDep
from app.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut)
async def read_health() -> HealthOut:
    """The process is up and serving."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}})
async def read_readiness(node: NodeDep) -> HealthOut | JSONResponse:
    """Partitions are assigned and models are ready to learn; 503 until then."""
    ready, detail = node.ready()
    if not ready:
        return JSONResponse({"status": "not ready", "detail": detail}, status_code=503)
    return HealthOut(status="ready", detail=detail)
