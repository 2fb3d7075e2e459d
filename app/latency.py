"""Request latency: every HTTP answer timed into the node's histogram.

Labels stay few: the method (any other than RFC 9110's and PATCH counts as ``OTHER``), the
route template the router matched (``/models/{name}/predict``, never the raw path; a path no
route takes is ``unmatched``) and the status class (``2xx``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import Histogram
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The route label of a path no route takes: one value, whatever was asked for.
UNMATCHED = "unmatched"
_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)


def route_template(scope: Scope) -> str:
    """The template of the route that answered, as the router left it in the scope.

    A request answered before the router (relayed to its model's owner, refused for its
    size) is matched against the app's routes here, which costs a little on those alone.
    """
    route = scope.get("route")
    if route is None:
        route = _match(getattr(getattr(scope.get("app"), "router", None), "routes", ()), scope)
    path = getattr(route, "path", None) if isinstance(route, BaseRoute) else None
    return path if isinstance(path, str) else UNMATCHED


def _match(routes: Iterable[BaseRoute], scope: Scope) -> BaseRoute | None:
    """The route the router would pick: the first full match, else the first partial one
    (the path with another method)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


class RequestLatency:
    """ASGI middleware: a timer and one ``observe`` per HTTP request, into ``histogram``
    (labelled ``method``, ``route``, ``status``)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            self.histogram.labels(method, route_template(scope), f"{status // 100}xx").observe(
                time.perf_counter() - started
            )
