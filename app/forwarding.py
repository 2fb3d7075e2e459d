"""Any node answers for every model: requests for a model live elsewhere go to its owner.

Every answer carries ``X-Streamlearn-Node``, the URL of the node that computed it; an answer
relayed from the owner also carries ``X-Streamlearn-Forwarded-By``, the node that relayed it.
A relayed request is never relayed again: during a rebalance the owner may answer 503.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.node import Node

NODE_HEADER = "x-streamlearn-node"
FORWARDED_HEADER = "x-streamlearn-forwarded-by"
#: A listing asks every node; one that is gone must not hold the whole answer up for long.
GATHER_TIMEOUT = 2.0
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


def was_forwarded(scope: Scope) -> bool:
    """The request was relayed by another node already."""
    return any(name == FORWARDED_HEADER.encode() for name, _ in scope.get("headers", ()))


class Peers:
    """This node's HTTP client to the other nodes of its group."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.client = httpx.AsyncClient(timeout=node.settings.forward_timeout_seconds)

    def _headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        kept = [(k, v) for k, v in headers if k.decode("latin-1").lower() not in _NOT_RELAYED]
        return [*kept, (FORWARDED_HEADER.encode(), self.node.node_id.encode())]

    async def relay(self, owner: str, scope: Scope, body: bytes) -> httpx.Response:
        """Send the request of ``scope`` to ``owner`` as it came."""
        raw_path = scope.get("raw_path")
        url = owner + (raw_path.decode("latin-1") if raw_path else scope["path"])
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        return await self.client.request(
            scope["method"], url, headers=self._headers(scope["headers"]), content=body
        )

    async def gather(self, path: str) -> dict[str, Any]:
        """``GET path`` on every other node of the group; the JSON by node, or the error."""
        others = [url for url in self.node.ownership.members() if url != self.node.node_id]

        async def one(url: str) -> Any:
            try:
                response = await self.client.get(
                    url + path,
                    headers={FORWARDED_HEADER: self.node.node_id},
                    timeout=min(GATHER_TIMEOUT, self.node.settings.forward_timeout_seconds),
                )
                response.raise_for_status()
                return response.json()
            except (httpx.HTTPError, ValueError) as exc:
                return exc

        answers = await asyncio.gather(*(one(url) for url in others))
        return dict(zip(others, answers, strict=True))


class ForwardToOwner:
    """ASGI middleware: relays model routes to the model's owner; stamps every answer."""

    def __init__(self, app: ASGIApp, node: Node, peers: Peers) -> None:
        self.app = app
        self.node = node
        self.peers = peers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        owner = self._owner_elsewhere(scope)
        if owner is None:
            await self.app(scope, receive, self._stamped(send))
            return
        body = await read_body(receive, self.node.settings.max_request_bytes)
        if body is None:
            detail = "the request body is larger than STREAMLEARN_MAX_REQUEST_BYTES"
            await answer(send, 413, detail, self.node.node_id)
            return
        try:
            response = await self.peers.relay(owner, scope, body)
        except httpx.HTTPError as exc:
            name = model_in_path(scope["path"])
            detail = (
                f"model {name!r} lives on {owner}, which did not answer ({type(exc).__name__});"
                " if that node is gone, its models move to the others within"
                f" {self.node.settings.session_timeout_seconds:g} s: retry then"
            )
            await answer(send, 503, detail, self.node.node_id, retry_after=True)
            return
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.multi_items()
            if k.lower() not in _NOT_RELAYED
        ]
        headers.append((FORWARDED_HEADER.encode(), self.node.node_id.encode()))
        headers.append((b"content-length", str(len(response.content)).encode()))
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": headers})  # fmt: skip
        await send({"type": "http.response.body", "body": response.content})

    def _owner_elsewhere(self, scope: Scope) -> str | None:
        """The URL to relay this request to, or ``None`` to answer it here."""
        name = model_in_path(scope["path"])
        if name is None or name not in self.node.registry.models or self.node.owns(name):
            return None
        if was_forwarded(scope):
            return None
        owner = self.node.ownership.owner_of(name)
        return owner if owner not in (None, self.node.node_id) else None

    def _stamped(self, send: Send) -> Send:
        node = self.node.node_id.encode()

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
