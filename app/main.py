"""Build the FastAPI app of a node: wire routers, middleware and the error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import handle_streamlearn_error
from app.forwarding import ForwardToOwner, Peers
from app.latency import RequestLatency
from app.limits import BodyLimit, unprocessable
from app.routes import (
    candidates,
    dashboard,
    events,
    health,
    models,
    registry,
    snapshots,
    telemetry,
    tuning,
)
from app.schemas import ErrorOut
from streams.gate import RequestGate
from streams.learning.catalog import Change
from streams.learning.errors import StreamlearnError
from streams.node import Node

#: The methods an ``Allow`` header may name: RFC 9110's, and PATCH.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")


async def _handle_validation_error(request: Request, exc: Exception) -> Response:
    """422 naming each field (``loc`` as FastAPI gives it), quoting what was sent only as
    a short excerpt (FastAPI's own answer quotes all of it)."""
    return unprocessable(exc.errors() if isinstance(exc, RequestValidationError) else [])


async def _handle_http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an HTTPException, but for two of the framework's own."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI could not read the body as JSON (not UTF-8, nested past the recursion
        # limit, an integer of over 4300 digits): a 422 like any other body that is not JSON.
        msg = f"body is not valid JSON: {type(exc.__cause__).__name__}"
        return unprocessable([{"loc": ["body"], "msg": msg, "type": "json_invalid"}])
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route that matched the path; RFC
        # 9110 wants every method of the resource (GET and POST /models/{name}/snapshots are
        # two routes): each route says whether it would take the path with each method.
        probe = {"type": "http", "path": request.scope["path"],
                 "root_path": request.scope.get("root_path", "")}  # fmt: skip
        allowed = [
            method
            for method in _METHODS
            if any(
                route.matches({**probe, "method": method})[0] is Match.FULL
                for route in request.app.router.routes
            )
        ]
        exc = HTTPException(405, exc.detail, headers={"Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


class _InflightCounter:
    """Counts the HTTP requests being answered at ``gate``, so learning can yield to them."""

    def __init__(self, app: ASGIApp, gate: RequestGate) -> None:
        self.app = app
        self.gate = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.gate.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.leave()


def create_api(node: Node) -> FastAPI:
    """The HTTP API over ``node``'s live models, and through its peers over the group's."""
    settings = node.settings
    peers = Peers(node.ownership, settings.forward_timeout_seconds)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        node.tuning.start_watching()
        yield
        await node.tuning.stop_watching()
        await peers.client.aclose()

    api = FastAPI(
        title="streamlearn",
        summary="Online learning on Kafka: live predictions, metrics and model state.",
        version="0.1.0",
        lifespan=lifespan,
        responses={413: {"model": ErrorOut, "description": "The body is over the size limit"}},
    )
    api.state.settings = settings
    api.state.registry = node.registry
    api.state.topics = node.topics
    api.state.snapshots = node.store
    api.state.admin = node.admin
    api.state.audit = node.audit
    api.state.deployments = node.deployments
    api.state.cluster = node.cluster
    api.state.ownership = node.ownership
    api.state.prometheus = node.prometheus
    api.state.peers = peers
    api.state.tuning = node.tuning
    api.add_exception_handler(StreamlearnError, handle_streamlearn_error)
    api.add_exception_handler(RequestValidationError, _handle_validation_error)
    api.add_exception_handler(HTTPException, _handle_http_error)
    api.add_middleware(_InflightCounter, gate=node.gate)
    # A relayed request waits on the network, not on this node's learning.
    api.add_middleware(
        ForwardToOwner,
        ownership=node.ownership,
        peers=peers,
        max_request_bytes=settings.max_request_bytes,
        session_timeout=settings.session_timeout_seconds,
    )
    # Times every answer from here in, relayed ones included (in node.prometheus).
    api.add_middleware(RequestLatency, histogram=node.http_latency)
    # Outermost: no byte past the limit is read, whatever the route and wherever it goes.
    api.add_middleware(
        BodyLimit, max_request_bytes=settings.max_request_bytes, node_url=node.cluster.url
    )
    # The events schema names the deployed models: the OpenAPI text follows the registry.
    deployed = sorted([*node.registry.models, *node.registry.templates])

    def follow_registry(change: Change) -> None:
        deployed[:] = sorted([*node.registry.models, *node.registry.templates])
        api.openapi_schema = None

    node.deployments.listeners.append(follow_registry)
    for router in (
        dashboard.router,
        health.router,
        registry.router,
        models.router,
        snapshots.router,
        candidates.router,
        tuning.router,
        events.router_for(deployed),
        telemetry.router,
    ):
        api.include_router(router)
    return api
