"""Limits on what a node reads of a request, and on how much of it an error quotes back.

A request body is at most ``STREAMLEARN_MAX_REQUEST_BYTES`` on every route: :class:`BodyLimit`
answers 413 before a route parses any of it, whether the client announced the size
(``Content-Length``) or streams the body in chunks without announcing it.

An error about an input quotes that input only as an :func:`excerpt`, and one answer lists
at most :data:`MAX_ERRORS` errors (:func:`unprocessable`): what a node sends back stays
small whatever it was sent, so a big bad body costs one small answer, not a second copy.

Examples
--------
>>> excerpt({"x": [1, 2]})
{'x': [1, 2]}
>>> text = excerpt({"x": "y" * 1000})
>>> len(text), text[:12], text[-1]
(201, '{"x":"yyyyyy', '…')
>>> excerpt(float("nan")) is None  # as JSON writes it: no NaN ever reaches an answer
True
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import status
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.forwarding import answer, read_body

#: How many characters of a refused input (or of an error's context) an error quotes.
EXCERPT_CHARS = 200
#: Error sentences are written by the node, but some quote a field name the client chose.
MESSAGE_CHARS = 300
#: How many errors one answer lists; a batch of a million bad events costs one short answer.
MAX_ERRORS = 100


class BodyLimit:
    """ASGI middleware: a request body over ``STREAMLEARN_MAX_REQUEST_BYTES`` gets 413.

    A body that announces a size over the limit is refused at once, unread. Any other body
    is read here, counting the bytes as they arrive, and refused as soon as the count
    passes the limit (a chunked body announces nothing); a body within the limit then
    reaches the app whole, as one message. Reading it here costs no memory the routes
    would not spend: every route that takes a body reads all of it before it starts.
    """

    def __init__(self, app: ASGIApp, max_request_bytes: int, node_url: str) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.node_url = node_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_request_bytes
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            detail = f"the request body is {announced} bytes, over the limit of {limit} bytes"
            await answer(send, status.HTTP_413_CONTENT_TOO_LARGE, detail, self.node_url)
            return
        body = await read_body(receive, limit)
        if body is None:
            detail = f"the request body is over the limit of {limit} bytes"
            await answer(send, status.HTTP_413_CONTENT_TOO_LARGE, detail, self.node_url)
            return
        await self.app(scope, _replay(body, receive), send)


def _content_length(scope: Scope) -> int | None:
    """The size the client announced, if it announced one that reads as a number."""
    for name, value in scope["headers"]:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body read already, then waits as before (for
    the client to disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> Any:
    """``value`` as an error may quote it: as it is when short, else the start of its JSON
    text (of the string itself, for a string), cut to ``limit`` characters and ending in
    "…". What comes back is always plain JSON: objects it cannot write become their
    ``str``, non-finite numbers ``null``."""
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    try:
        text = orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:  # nested too deep, or an integer past 64 bits
        try:
            text = reprlib.repr(value)  # bounded however deep or long the value is
        except ValueError:  # an integer of over 4300 digits, which Python will not write
            text = f"<{type(value).__name__}>"
    if len(text) > limit:
        return text[:limit] + "…"
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # the repr of something JSON cannot hold
        return text


def short_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``errors`` as an answer lists them: the first :data:`MAX_ERRORS`, each with ``loc``
    and ``type`` as given, ``msg`` cut to :data:`MESSAGE_CHARS`, and everything else (the
    ``input``, each value of the ``ctx``) as an :func:`excerpt`; then, if some were left
    out, one more saying how many."""
    shown = [_short_error(error) for error in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append({
            "loc": ["body"],
            "msg": f"{len(errors) - MAX_ERRORS} more errors not shown",
            "type": "too_many_errors",
        })  # fmt: skip
    return shown


def _short_error(error: Mapping[str, Any]) -> dict[str, Any]:
    short: dict[str, Any] = {}
    for key, value in error.items():
        if key == "loc":
            short[key] = list(value)
        elif key == "type":
            short[key] = str(value)
        elif key == "msg":
            short[key] = excerpt(str(value), MESSAGE_CHARS)
        elif key == "ctx" and isinstance(value, Mapping):
            short[key] = {str(k): excerpt(v) for k, v in value.items()}
        else:
            short[key] = excerpt(value)
    return short


def unprocessable(errors: Sequence[Mapping[str, Any]]) -> Response:
    """The 422 answer for ``errors``: ``{"detail": [{"loc", "msg", "type", ...}]}``, short
    (see :func:`short_errors`)."""
    # ensure_ascii: a field name in `loc` is the client's, and may hold a lone surrogate
    # (which JSON can escape and UTF-8 cannot carry): escaped, it is quoted as it came.
    content = json.dumps({"detail": short_errors(errors)}, ensure_ascii=True, allow_nan=False)
    return Response(
        content, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json"
    )
