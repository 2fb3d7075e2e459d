"""Build the FastAPI app of a node: wire routers and the error handler, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.forwarding import ForwardToOwner, Peers
from app.routes import candidates, dashboard, events, health, models, snapshots, telemetry
from streams.learning.errors import StreamlearnError
from streams.node import Node


async def _handle_streamlearn_error(request: Request, exc: Exception) -> JSONResponse:
    status_code = exc.status_code if isinstance(exc, StreamlearnError) else 500
    headers = {"Retry-After": "1"} if status_code == 503 else None
    return JSONResponse({"detail": str(exc)}, status_code=status_code, headers=headers)


class _InflightCounter:
    """Counts the HTTP requests being answered, so learning can yield to them."""

    def __init__(self, app: ASGIApp, node: Node) -> None:
        self.app = app
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.node.http_inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.node.http_inflight -= 1


def create_api(node: Node) -> FastAPI:
    """The HTTP API over ``node``'s live models, and through its peers over the group's."""
    peers = Peers(node)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        yield
        await peers.client.aclose()

    api = FastAPI(
        title="streamlearn",
        summary="Online learning on Kafka: live predictions, metrics and model state.",
        version="0.1.0",
        lifespan=lifespan,
    )
    api.state.node = node
    api.state.peers = peers
    api.add_exception_handler(StreamlearnError, _handle_streamlearn_error)
    api.add_middleware(_InflightCounter, node=node)
    # Outermost: a relayed request waits on the network, not on this node's learning.
    api.add_middleware(ForwardToOwner, node=node, peers=peers)
    for router in (
        dashboard.router,
        health.router,
        models.router,
        snapshots.router,
        candidates.router,
        events.router,
        telemetry.router,
    ):
        api.include_router(router)
    return api
