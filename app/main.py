"""Build the FastAPI app of a node: wire routers and the error handler, nothing else."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.routes import dashboard, events, health, models, snapshots, telemetry
from streams.learning.errors import StreamlearnError
from streams.node import Node


async def _handle_streamlearn_error(request: Request, exc: Exception) -> JSONResponse:
    status_code = exc.status_code if isinstance(exc, StreamlearnError) else 500
    return JSONResponse({"detail": str(exc)}, status_code=status_code)


def create_api(node: Node) -> FastAPI:
    """The HTTP API over ``node``'s live models."""
    api = FastAPI(
        title="streamlearn",
        summary="Online learning on Kafka: live predictions, metrics and model state.",
        version="0.1.0",
    )
    api.state.node = node
    api.add_exception_handler(StreamlearnError, _handle_streamlearn_error)
    for router in (
        dashboard.router,
        health.router,
        models.router,
        snapshots.router,
        events.router,
        telemetry.router,
    ):
        api.include_router(router)
    return api
