"""Any node answers for every model: requests for a model live elsewhere go to its owner.

Every answer carries ``X-Streamlearn-Node``, the URL of the node that computed it; an answer
relayed from the owner also carries ``X-Streamlearn-Forwarded-By``, the node that relayed it.
A relayed request is never relayed again: during a rebalance the owner may answer 503.

Whether a model is live here is decided once per request, here: a request answered on this
node carries the decision to the routes (:func:`decided_live`), which answer 503 for a model
not live here rather than ask again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.ownership import Ownership

NODE_HEADER = "x-streamlearn-node"
FORWARDED_HEADER = "x-streamlearn-forwarded-by"
#: A relayed request names its client's address last here (the owner audits admin calls).
FORWARDED_FOR_HEADER = "x-forwarded-for"
#: A listing asks every node; one that is gone must not hold the whole answer up for long.
GATHER_TIMEOUT = 2.0
#: Where the decision is kept, in the request's ``scope["state"]`` (``request.state``): the
#: name of the model in the path when it is live on this node.
LIVE_MODEL = "live_model"
#: Hop-by-hop headers, and those httpx recomputes, are not relayed.
_NOT_RELAYED = frozenset(
    {"host", "connection", "keep-alive", "transfer-encoding", "content-length",
     "content-encoding", "te", "trailer", "upgrade", "proxy-authorization"}
)  # fmt: skip


def model_in_path(path: str) -> str | None:
    """The model a route is about: ``/models/{name}`` and everything under it."""
    parts = path.split("/", 3)
    if len(parts) >= 3 and parts[1] == "models" and parts[2]:
        return parts[2]
    return None


def _deploys(scope: Scope) -> bool:
    """``PUT`` or ``DELETE /models/{name}``: a model deployed (perhaps for the first time),
    or a template, which is no model of its own, deployed or retired."""
    return scope["method"] in ("PUT", "DELETE") and len(scope["path"].rstrip("/").split("/")) == 3


def was_forwarded(scope: Scope) -> bool:
    """The request was relayed by another node already."""
    return any(name == FORWARDED_HEADER.encode() for name, _ in scope.get("headers", ()))


def decided_live(scope: Scope, name: str) -> bool:
    """:class:`ForwardToOwner` found model ``name`` live on this node for this request."""
    state = scope.get("state")
    return state is not None and state.get(LIVE_MODEL) == name


class Peers:
    """This node's HTTP client to the other nodes of its group (``ownership`` names them)."""

    def __init__(
        self,
        ownership: Ownership,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.ownership = ownership
        self.timeout = timeout
        self.client = httpx.AsyncClient(timeout=timeout, transport=transport)

    def _headers(
        self, headers: list[tuple[bytes, bytes]], client: str | None = None
    ) -> list[tuple[bytes, bytes]]:
        kept = [(k, v) for k, v in headers if k.decode("latin-1").lower() not in _NOT_RELAYED]
        relayed = [*kept, (FORWARDED_HEADER.encode(), self.ownership.url.encode())]
        if client is None:
            return relayed
        forwarded_for = FORWARDED_FOR_HEADER.encode()
        chain = [v for k, v in relayed if k.lower() == forwarded_for] + [client.encode()]
        return [*(h for h in relayed if h[0].lower() != forwarded_for),
                (forwarded_for, b", ".join(chain))]  # fmt: skip

    async def relay(self, owner: str, scope: Scope, body: bytes) -> httpx.Response:
        """Send the request of ``scope`` to ``owner`` as it came."""
        raw_path = scope.get("raw_path")
        url = owner + (raw_path.decode("latin-1") if raw_path else scope["path"])
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        client = scope.get("client")
        headers = self._headers(scope["headers"], client[0] if client else None)
        return await self.client.request(scope["method"], url, headers=headers, content=body)

    async def gather(self, path: str) -> dict[str, Any]:
        """``GET path`` on every other node of the group; the JSON by node, or the error."""
        others = [url for url in self.ownership.members() if url != self.ownership.url]

        async def one(url: str) -> Any:
            try:
                response = await self.client.get(
                    url + path,
                    headers={FORWARDED_HEADER: self.ownership.url},
                    timeout=min(GATHER_TIMEOUT, self.timeout),
                )
                response.raise_for_status()
                return response.json()
            except (httpx.HTTPError, ValueError) as exc:
                return exc

        answers = await asyncio.gather(*(one(url) for url in others))
        return dict(zip(others, answers, strict=True))


class ForwardToOwner:
    """ASGI middleware: relays model routes to the model's owner; stamps every answer.

    ``max_request_bytes`` bounds a relayed body; ``session_timeout`` is how long the group
    takes to notice a node is gone (quoted when an owner does not answer).
    """

    def __init__(
        self,
        app: ASGIApp,
        ownership: Ownership,
        peers: Peers,
        max_request_bytes: int,
        session_timeout: float,
    ) -> None:
        self.app = app
        self.ownership = ownership
        self.peers = peers
        self.max_request_bytes = max_request_bytes
        self.session_timeout = session_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        owner = self._owner_elsewhere(scope)
        if owner is None:
            await self.app(scope, receive, self._stamped(send))
            return
        url = self.ownership.url
        body = await read_body(receive, self.max_request_bytes)
        if body is None:
            detail = "the request body is larger than STREAMLEARN_MAX_REQUEST_BYTES"
            await answer(send, 413, detail, url)
            return
        try:
            response = await self.peers.relay(owner, scope, body)
        except httpx.HTTPError as exc:
            name = model_in_path(scope["path"])
            detail = (
                f"model {name!r} lives on {owner}, which did not answer ({type(exc).__name__});"
                " if that node is gone, its models move to the others within"
                f" {self.session_timeout:g} s: retry then"
            )
            await answer(send, 503, detail, url, retry_after=True)
            return
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in _NOT_RELAYED
        ]
        headers.append((FORWARDED_HEADER.encode(), url.encode()))
        headers.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})  # fmt: skip
        await send({"type": "http.response.body", "body": response.content})

    def _owner_elsewhere(self, scope: Scope) -> str | None:
        """The URL to relay this request to, or ``None`` to answer it here; a model found
        live here is recorded in the scope's state (see :func:`decided_live`)."""
        name = model_in_path(scope["path"])
        if name is None:
            return None
        if name not in self.ownership.registry.models:
            # The owner of a name's partition writes the registry's changes of it.
            if not _deploys(scope) or was_forwarded(scope):
                return None
            owner = self.ownership.owner_of(name)
            return owner if owner not in (None, self.ownership.url) else None
        if self.ownership.is_live(name):
            scope.setdefault("state", {})[LIVE_MODEL] = name
            return None
        if was_forwarded(scope):
            return None
        owner = self.ownership.owner_of(name)
        return owner if owner not in (None, self.ownership.url) else None

    def _stamped(self, send: Send) -> Send:
        node = self.ownership.url.encode()

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (
                    NODE_HEADER.encode(), node)]}  # fmt: skip
            await send(message)

        return stamped


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or ``None`` as soon as more than ``limit`` bytes came (the
    rest is left unread); what came before the client disconnected, if it did."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def answer(
    send: Send, status: int, detail: str, node: str, *, retry_after: bool = False
) -> None:
    """Answer ``{"detail": detail}`` from a middleware, stamped with ``node`` (and
    ``Retry-After: 1`` when asked)."""
    body = orjson.dumps({"detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (NODE_HEADER.encode(), node.encode()),
    ]
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
