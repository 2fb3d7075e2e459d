"""Dependencies injected into route handlers."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.schemas import INVALID_RESPONSE, ErrorOut
from streams.learning.errors import ModelUnavailable
from streams.learning.model import OnlineModel
from streams.node import Node


def get_node(request: Request) -> Node:
    """The node this API is served by (set by :func:`app.main.create_api`)."""
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def get_model(name: str, node: NodeDep) -> OnlineModel:
    """The model named in the path, live on this node: :class:`UnknownModel` (404) when no
    such model is declared, :class:`ModelUnavailable` (503) when it is live nowhere reachable
    (a request for a model live on another node never gets here: it is forwarded)."""
    model = node.registry.get(name)
    if not node.owns(name):
        raise ModelUnavailable(
            name,
            "is not live on this node and no other node holds it right now: its partition is"
            " moving between nodes (a rebalance)",
        )
    return model


ModelDep = Annotated[OnlineModel, Depends(get_model)]

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "required": True,
                                "schema": {"type": "integer"}}}  # fmt: skip

#: What a route whose path names a model (and that takes :data:`ModelDep`) may answer besides
#: its success; :data:`ADMIN_RESPONSES` adds what an admin route may.
MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **INVALID_RESPONSE,
    404: {"model": ErrorOut, "description": "No model of that name is declared"},
    503: {
        "model": ErrorOut,
        "headers": _RETRY_AFTER,
        "description": "The model is between owners (a rebalance), or its owner did not answer;"
        " an admin route also while the group rebalances: retry",
    },
}


_bearer = HTTPBearer(auto_error=False, description="STREAMLEARN_ADMIN_TOKEN")


def require_admin(
    node: NodeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin routes need ``Authorization: Bearer $STREAMLEARN_ADMIN_TOKEN``, and change a
    model only while its group is not rebalancing (the change could miss the next owner)."""
    token = node.settings.admin_token
    if token is None or not token.get_secret_value():
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "admin routes are disabled: set STREAMLEARN_ADMIN_TOKEN on the node to enable them",
        )
    given = credentials.credentials.encode() if credentials else b""
    if not hmac.compare_digest(given, token.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "send Authorization: Bearer <STREAMLEARN_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if node.app.rebalancing:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the consumer group is rebalancing (a node joined or left); retry in a moment",
            headers={"Retry-After": "1"},
        )


AdminDep = Annotated[None, Depends(require_admin)]

ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **MODEL_RESPONSES,
    401: {
        "model": ErrorOut,
        "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
        "description": "No `Authorization: Bearer` token, or a wrong one",
    },
    403: {"model": ErrorOut, "description": "The node has no admin token: admin routes are off"},
}
