"""Prometheus exposition."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.deps import PrometheusDep

router = APIRouter(tags=["telemetry"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def read_prometheus(prometheus: PrometheusDep) -> Response:
    """Prometheus text: per-model counters, versions and metric values."""
    return Response(generate_latest(prometheus), media_type=CONTENT_TYPE_LATEST)
