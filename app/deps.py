"""Dependencies injected into route handlers: each the narrow part of the node a route needs.

:func:`app.main.create_api` puts the parts on ``app.state``; a route names what it takes with
the ``*Dep`` aliases below, and an admin route its action with :func:`admin_action`.

Every dependency is ``async def``, although none awaits anything: FastAPI runs a plain
``def`` dependency in its thread pool, and each such hop to a thread and back costs a
request up to the interpreter's switch interval (5 ms) while learning holds the GIL on the
worker's loop.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.registry import CollectorRegistry
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import status_of
from app.forwarding import FORWARDED_FOR_HEADER, FORWARDED_HEADER, Peers, decided_live
from app.schemas import INVALID_RESPONSE, ErrorOut
from streams.admin import Admin
from streams.audit import AuditTrail, fingerprint
from streams.cluster import Cluster
from streams.deployments import Deployments
from streams.learning.errors import ModelUnavailable, StreamlearnError
from streams.learning.model import OnlineModel
from streams.learning.records import AuditEntry, Caller
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.ownership import Ownership
from streams.settings import Settings
from streams.topics import Topics


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_registry(request: Request) -> ModelRegistry:
    registry: ModelRegistry = request.app.state.registry
    return registry


async def get_topics(request: Request) -> Topics:
    topics: Topics = request.app.state.topics
    return topics


async def get_snapshots(request: Request) -> SnapshotStore:
    store: SnapshotStore = request.app.state.snapshots
    return store


async def get_admin(request: Request) -> Admin:
    admin: Admin = request.app.state.admin
    return admin


async def get_cluster(request: Request) -> Cluster:
    cluster: Cluster = request.app.state.cluster
    return cluster


async def get_ownership(request: Request) -> Ownership:
    ownership: Ownership = request.app.state.ownership
    return ownership


async def get_peers(request: Request) -> Peers:
    peers: Peers = request.app.state.peers
    return peers


async def get_prometheus(request: Request) -> CollectorRegistry:
    prometheus: CollectorRegistry = request.app.state.prometheus
    return prometheus


async def get_deployments(request: Request) -> Deployments:
    deployments: Deployments = request.app.state.deployments
    return deployments


async def get_audit(request: Request) -> AuditTrail:
    audit: AuditTrail = request.app.state.audit
    return audit


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
TopicsDep = Annotated[Topics, Depends(get_topics)]
SnapshotsDep = Annotated[SnapshotStore, Depends(get_snapshots)]
ActionsDep = Annotated[Admin, Depends(get_admin)]
ClusterDep = Annotated[Cluster, Depends(get_cluster)]
OwnershipDep = Annotated[Ownership, Depends(get_ownership)]
PeersDep = Annotated[Peers, Depends(get_peers)]
PrometheusDep = Annotated[CollectorRegistry, Depends(get_prometheus)]
AuditDep = Annotated[AuditTrail, Depends(get_audit)]
DeploymentsDep = Annotated[Deployments, Depends(get_deployments)]


async def get_model(name: str, request: Request, registry: RegistryDep) -> OnlineModel:
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
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
#: Path parameters that are numbers (snapshot versions), recorded as such when they are.
_NUMERIC_PARAMS = frozenset({"version"})


@dataclass
class AdminCall:
    """A call of an admin route, as the audit trail records it: the route adds to ``detail``
    what its action made (the snapshot taken, the version it rolled back to, ...)."""

    action: str
    model: str
    who: Caller
    detail: dict[str, Any] = field(default_factory=dict)

    def entry(self, result: str, status_code: int, node: str) -> AuditEntry:
        now = datetime.now(UTC).isoformat()
        return AuditEntry(now, self.action, self.model, self.who, result, status_code, node,
                          self.detail)  # fmt: skip


def admin_action(action: str) -> Any:
    """The dependency of an admin route doing ``action``, first among its parameters: the
    token is checked before anything else (a caller without it learns nothing, not even
    whether the model exists), and the call is audited (:mod:`streams.audit`) whatever comes
    of it, after the route has answered and before the answer leaves.

    ``call: Annotated[AdminCall, admin_action("snapshot")]``
    """

    async def admin_call(
        request: Request,
        settings: SettingsDep,
        cluster: ClusterDep,
        audit: AuditDep,
        credentials: BearerDep,
    ) -> AsyncIterator[AdminCall]:
        # A token in another scheme than Bearer (Basic, say) is fingerprinted whole.
        presented = credentials.credentials if credentials else request.headers.get("authorization")
        params = {name: int(value) if name in _NUMERIC_PARAMS and value.isdecimal() else value
                  for name, value in request.path_params.items() if name != "name"}  # fmt: skip
        call = AdminCall(action, request.path_params.get("name", ""),
                         caller(request, presented), params)  # fmt: skip
        try:
            require_admin(settings, cluster, credentials)
            yield call
        except Exception as exc:  # audited, then answered as ever
            audit.record(call.entry(*_outcome(exc), cluster.url))
            raise
        route = request.scope.get("route")
        status_code = getattr(route, "status_code", None) or status.HTTP_200_OK
        audit.record(call.entry("ok", status_code, cluster.url))

    return Depends(admin_call, scope="function")


def caller(request: Request, presented: str | None) -> Caller:
    """Who made ``request``: the fingerprint of the token ``presented``, and the client's
    address. A call another node relayed (``X-Streamlearn-Forwarded-By``) names its original
    client in the last ``X-Forwarded-For`` entry, which the relaying node appended; the
    address the call came from is kept with it, which is what vouches for that entry."""
    peer = request.client.host if request.client else None
    relayed_by = request.headers.get(FORWARDED_HEADER)
    if relayed_by is None:
        return Caller(fingerprint(presented), peer)
    chain = ",".join(request.headers.getlist(FORWARDED_FOR_HEADER))
    client = chain.rsplit(",", 1)[-1].strip() or peer
    return Caller(fingerprint(presented), client, {"node": relayed_by, "address": peer})


def _outcome(exc: Exception) -> tuple[str, int]:
    """The sentence and the status an admin call that raised ``exc`` is answered with."""
    if isinstance(exc, StarletteHTTPException):
        return str(exc.detail), exc.status_code
    if isinstance(exc, StreamlearnError):
        return str(exc), status_of(exc)
    if isinstance(exc, RequestValidationError):
        fields = "; ".join(
            f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
            for error in exc.errors()
        )
        return f"invalid request: {fields}"[:300], status.HTTP_422_UNPROCESSABLE_CONTENT
    return f"internal error: {type(exc).__name__}", status.HTTP_500_INTERNAL_SERVER_ERROR


def require_admin(
    settings: Settings, cluster: Cluster, credentials: HTTPAuthorizationCredentials | None
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


ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **MODEL_RESPONSES,
    401: {
        "model": ErrorOut,
        "headers": {"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
        "description": "No `Authorization: Bearer` token, or a wrong one",
    },
    403: {"model": ErrorOut, "description": "The node has no admin token: admin routes are off"},
}
