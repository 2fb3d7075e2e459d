"""The request-latency histogram: labelled by route template and status class, on /metrics."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.latency import UNMATCHED, RequestLatency
from streams.telemetry import build_http_latency
from tests.unit.app.conftest import MakeClient

HISTOGRAM = "streamlearn_http_request_duration_seconds"


def counts(metrics_text: str) -> dict[tuple[str, str, str], float]:
    """``(method, route, status) -> requests observed`` from Prometheus text."""
    (family,) = [f for f in text_string_to_metric_families(metrics_text) if f.name == HISTOGRAM]
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for s in family.samples
        if s.name == f"{HISTOGRAM}_count"
    }


async def test_requests_are_timed_by_method_route_template_and_status_class(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    for _ in range(3):
        response = await client.post("/models/clicks/predict", json={"features": {"x": 1.0}})
        assert response.status_code == 200
    assert (await client.post("/models/nope/predict", json={"features": {}})).status_code == 404
    for path in ("/wp-admin", "/etc/passwd", "/models/clicks/nope/deeper"):
        assert (await client.get(path)).status_code == 404
    assert (await client.request("BREW", "/models")).status_code == 405
    assert (await client.delete("/models")).status_code == 405

    seen = counts((await client.get("/metrics")).text)
    assert seen[("POST", "/models/{name}/predict", "2xx")] == 3
    assert seen[("POST", "/models/{name}/predict", "4xx")] == 1
    assert seen[("GET", UNMATCHED, "4xx")] == 3  # every unknown path is one series
    assert seen[("OTHER", "/models", "4xx")] == 1  # and every unknown method one value
    assert seen[("DELETE", "/models", "4xx")] == 1
    # /metrics is answered before its own observation is recorded.
    assert ("GET", "/metrics", "2xx") not in seen
    assert counts((await client.get("/metrics")).text)[("GET", "/metrics", "2xx")] == 1


def histogram() -> Histogram:
    return build_http_latency(CollectorRegistry())


def observed(latency: Histogram) -> dict[tuple[str, str, str], float]:
    return {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in latency.collect()
        for s in family.samples
        if s.name.endswith("_count")
    }


async def item(request: Request) -> Response:
    return PlainTextResponse(request.path_params["id"])


async def boom(request: Request) -> Response:
    raise RuntimeError("the app failed")


class AnswerFirst:
    """Answers /items/... itself, before the router, as a relay to a model's owner does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/items/relayed"):
            await PlainTextResponse("from the owner", status_code=202)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def starlette_app(latency: Histogram) -> Starlette:
    app = Starlette(routes=[Route("/items/{id}", item), Route("/boom", boom)])
    app.add_middleware(AnswerFirst)
    app.add_middleware(RequestLatency, histogram=latency)
    return app


async def test_an_answer_given_before_the_router_is_labelled_with_its_route_template() -> None:
    latency = histogram()
    transport = httpx.ASGITransport(app=starlette_app(latency))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        assert (await client.get("/items/7")).status_code == 200
        assert (await client.get("/items/relayed")).status_code == 202
    assert observed(latency) == {("GET", "/items/{id}", "2xx"): 2}


async def test_an_app_that_raises_is_timed_as_a_5xx() -> None:
    latency = histogram()
    transport = httpx.ASGITransport(app=starlette_app(latency), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        assert (await client.get("/boom")).status_code == 500
    assert observed(latency) == {("GET", "/boom", "5xx"): 1}


async def test_the_buckets_resolve_fast_answers() -> None:
    latency = histogram()
    transport = httpx.ASGITransport(app=starlette_app(latency))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        await client.get("/items/1")
    buckets = [
        float(s.labels["le"])
        for family in latency.collect()
        for s in family.samples
        if s.name.endswith("_bucket")
    ]
    assert buckets[0] <= 0.001 and buckets[-1] == float("inf")
