"""Dependencies injected into route handlers: each the narrow part of the node a route needs.

:func:`app.main.create_api` puts the parts on ``app.state``; a route names what it takes with
the ``*Dep`` aliases below.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.registry import CollectorRegistry

from app.forwarding import Peers, decided_live
from app.schemas import INVALID_RESPONSE, ErrorOut
from streams.admin import Admin
from streams.cluster import Cluster
from streams.learning.errors import ModelUnavailable
from streams.learning.model import OnlineModel
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.ownership import Ownership
from streams.settings import Settings
from streams.topics import Topics


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


def get_topics(request: Request) -> Topics:
    topics: Topics = request.app.state.topics
    return topics


def get_snapshots(request: Request) -> SnapshotStore:
    store: SnapshotStore = request.app.state.snapshots
    return store


def get_admin(request: Request) -> Admin:
    admin: Admin = request.app.state.admin
    return admin


def get_cluster(request: Request) -> Cluster:
    cluster: Cluster = request.app.state.cluster
    return cluster


def get_ownership(request: Request) -> Ownership:
    ownership: Ownership = request.app.state.ownership
    return ownership


def get_peers(request: Request) -> Peers:
    peers: Peers = request.app.state.peers
    return peers


def get_prometheus(request: Request) -> CollectorRegistry:
    prometheus: CollectorRegistry = request.app.state.prometheus
    return prometheus


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
TopicsDep = Annotated[Topics, Depends(get_topics)]
SnapshotsDep = Annotated[SnapshotStore, Depends(get_snapshots)]
ActionsDep = Annotated[Admin, Depends(get_admin)]
ClusterDep = Annotated[Cluster, Depends(get_cluster)]
OwnershipDep = Annotated[Ownership, Depends(get_ownership)]
PeersDep = Annotated[Peers, Depends(get_peers)]
PrometheusDep = Annotated[CollectorRegistry, Depends(get_prometheus)]


def get_model(name: str, request: Request, registry: RegistryDep) -> OnlineModel:
    """The model named in the path, live on this node: :class:`UnknownModel` (404) when no
    such model is declared, :class:`ModelUnavailable` (503) when it is live nowhere reachable
    (a request for a model live on another node never gets here: it is forwarded). Whether
    it is live here was decided once, by :class:`app.forwarding.ForwardToOwner`."""
    model = registry.get(name)
    if not decided_live(request.scope, name):
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
    settings: SettingsDep,
    cluster: ClusterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin routes need ``Authorization: Bearer $STREAMLEARN_ADMIN_TOKEN``, and change a
    model only while its group is not rebalancing (the change could miss the next owner)."""
    token = settings.admin_token
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
    if cluster.rebalancing:
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
