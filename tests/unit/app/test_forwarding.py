"""Forwarding to a model's owner: the ASGI middleware over a stand-in group and a fake peer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.forwarding import FORWARDED_HEADER, NODE_HEADER, ForwardToOwner, Peers, decided_live
from streams.cluster import Cluster
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec
from streams.ownership import Ownership
from tests.unit.app.conftest import MakeClient
from tests.unit.streams.factories import lifecycle, registry
from tests.unit.streams.test_ownership import HERE, THERE, StandInApp


class Inner:
    """The app behind the middleware: answers 200 and notes what it was handed."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"here"})


class FakePeer:
    """The other node, behind an ``httpx.MockTransport``: records each request."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path == "/models":
            return httpx.Response(200, json=[{"name": "theirs"}])
        return httpx.Response(201, json={"from": "there"}, headers={"x-owner": "yes"})


def group(reg: ModelRegistry, tmp_path: Path) -> Ownership:
    """This node holds model ``mine``'s partition; the peer holds ``theirs``'s."""
    app = StandInApp({HERE: {"ev": [reg.partition_of("mine")]},
                      THERE: {"ev": [reg.partition_of("theirs")]}})  # fmt: skip
    ownership = Ownership(Cluster(app), reg, lifecycle(reg, tmp_path))
    ownership.lifecycle.live.add("mine")
    return ownership


def two_partitions() -> ModelRegistry:
    names = ("mine", "theirs", "moving")
    specs = {n: ModelSpec(name=n, task="regression", pipeline="linear_model.LinearRegression()")
             for n in names}  # fmt: skip
    reg = registry(partitions=16, **specs)
    assert len({reg.partition_of(n) for n in names}) == 3  # murmur2 of the names: fixed
    return reg


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()


@pytest.fixture
async def parts(
    tmp_path: Path, peer: FakePeer
) -> AsyncIterator[tuple[httpx.AsyncClient, Inner, Peers]]:
    ownership = group(two_partitions(), tmp_path)
    peers = Peers(ownership, timeout=1.0, transport=httpx.MockTransport(peer))
    inner = Inner()
    middleware = ForwardToOwner(inner, ownership, peers, max_request_bytes=64, session_timeout=10)
    transport = httpx.ASGITransport(app=middleware)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client, inner, peers
    await peers.client.aclose()


async def test_a_model_live_here_is_answered_here_with_the_decision(
    parts: tuple[httpx.AsyncClient, Inner, Peers], peer: FakePeer
) -> None:
    client, inner, _ = parts
    response = await client.post("/models/mine/predict", json={"features": {}})
    assert response.status_code == 200 and response.headers[NODE_HEADER] == HERE
    (scope,) = inner.scopes
    assert decided_live(scope, "mine") and not decided_live(scope, "theirs")
    assert peer.requests == []


async def test_a_model_held_elsewhere_is_relayed_as_it_came(
    parts: tuple[httpx.AsyncClient, Inner, Peers], peer: FakePeer
) -> None:
    client, inner, _ = parts
    response = await client.post("/models/theirs/predict?x=1", content=b'{"features": {}}',
                                 headers={"authorization": "Bearer t"})  # fmt: skip
    assert inner.scopes == []
    (request,) = peer.requests
    assert str(request.url) == f"{THERE}/models/theirs/predict?x=1"
    assert request.content == b'{"features": {}}'
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers[FORWARDED_HEADER] == HERE
    # The owner's answer, as is, saying who relayed it.
    assert response.status_code == 201 and response.json() == {"from": "there"}
    assert response.headers["x-owner"] == "yes" and response.headers[FORWARDED_HEADER] == HERE


async def test_an_owner_that_does_not_answer_is_a_503_to_retry(
    tmp_path: Path,
) -> None:
    ownership = group(two_partitions(), tmp_path)
    peers = Peers(ownership, timeout=1.0, transport=httpx.MockTransport(FakePeer(fail=True)))
    middleware = ForwardToOwner(Inner(), ownership, peers, max_request_bytes=64, session_timeout=10)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=middleware),
                                 base_url="http://node") as client:  # fmt: skip
        response = await client.get("/models/theirs/metrics")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["detail"] == (
        f"model 'theirs' lives on {THERE}, which did not answer (ConnectError); if that node is"
        " gone, its models move to the others within 10 s: retry then"
    )
    assert response.headers[NODE_HEADER] == HERE


async def test_what_is_not_relayed_is_answered_here_without_a_decision(
    parts: tuple[httpx.AsyncClient, Inner, Peers], peer: FakePeer
) -> None:
    client, inner, _ = parts
    await client.get("/models/theirs", headers={FORWARDED_HEADER: THERE})  # relayed once only
    await client.get("/models/moving")  # nobody holds it: the route answers 503
    await client.get("/models/nope")  # not a model: the route answers 404
    await client.get("/models")
    assert peer.requests == []
    assert [s["path"] for s in inner.scopes] == [
        "/models/theirs", "/models/moving", "/models/nope", "/models"]  # fmt: skip
    assert not any(decided_live(s, n) for s in inner.scopes for n in ("theirs", "moving", "nope"))


async def test_a_relayed_body_over_the_limit_is_413(
    parts: tuple[httpx.AsyncClient, Inner, Peers], peer: FakePeer
) -> None:
    client, _, _ = parts
    response = await client.post("/models/theirs/predict", content=b"x" * 65)
    assert response.status_code == 413 and peer.requests == []
    assert "STREAMLEARN_MAX_REQUEST_BYTES" in response.json()["detail"]


async def test_gather_asks_every_other_member(
    parts: tuple[httpx.AsyncClient, Inner, Peers], peer: FakePeer
) -> None:
    _, _, peers = parts
    answers = await peers.gather("/models?local=true")
    assert answers == {THERE: [{"name": "theirs"}]}
    (request,) = peer.requests
    assert request.headers[FORWARDED_HEADER] == HERE
    peer.fail = True
    (error,) = (await peers.gather("/models?local=true")).values()
    assert isinstance(error, httpx.ConnectError)


class CountingSet(set[str]):
    """The live models, counting how often a request asks whether one is live."""

    asked = 0

    def __contains__(self, name: object) -> bool:
        CountingSet.asked += 1
        return super().__contains__(name)


async def test_the_predict_path_asks_once_whether_the_model_is_live(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    api: Any = client._transport.app  # type: ignore[attr-defined]
    lifecycle_ = api.state.ownership.lifecycle
    lifecycle_.live = CountingSet(lifecycle_.live)
    CountingSet.asked = 0
    response = await client.post("/models/prices/predict", json={"features": {"x": 1.0}})
    assert response.status_code == 200
    assert CountingSet.asked == 1
