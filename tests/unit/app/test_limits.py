"""Body limits on every route, and errors that quote only an excerpt of what was sent."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.types import Message

from app.limits import EXCERPT_CHARS, MAX_ERRORS, excerpt
from app.main import create_api
from app.routes.events import to_messages
from streams.node import build_node
from streams.settings import Settings
from tests.unit.app.conftest import MODELS, MakeClient

NODE = "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/models/x/predict"), ("POST", "/models/clicks/predict"), ("POST", "/events"),
     ("POST", "/labels"), ("POST", "/models/clicks/snapshots"), ("GET", "/healthz")],
)  # fmt: skip
async def test_a_body_announced_over_the_limit_is_413_on_every_route(
    make_client: MakeClient, method: str, path: str
) -> None:
    client = await make_client()
    body = orjson.dumps({"features": {"x": "y" * 5000}})
    response = await client.request(method, path, content=body)
    assert response.status_code == 413
    assert response.json() == {
        "detail": f"the request body is {len(body)} bytes, over the limit of 4096 bytes"
    }
    assert response.headers["x-streamlearn-node"] == NODE


async def test_a_chunked_body_is_counted_as_it_arrives(make_client: MakeClient) -> None:
    client = await make_client()

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"features": {"x": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    response = await client.post("/models/clicks/predict", content=chunks())
    assert "content-length" not in response.request.headers  # sent chunked, size unannounced
    assert response.status_code == 413
    assert response.json() == {"detail": "the request body is over the limit of 4096 bytes"}
    assert response.headers["x-streamlearn-node"] == NODE


async def test_a_chunked_body_within_the_limit_reaches_the_route_whole(
    make_client: MakeClient,
) -> None:
    client = await make_client()

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"features": ', b'{"x": 1.5', b"}}"):
            yield part

    headers = {"content-type": "application/json"}
    response = await client.post("/models/prices/predict", content=chunks(), headers=headers)
    assert response.status_code == 200
    assert response.json()["prediction"] == 0.0


async def test_reading_stops_once_the_body_is_over_the_limit(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    node = build_node(Settings(models=models, state_dir=tmp_path / "s", max_request_bytes=4096))
    api = create_api(node)
    n_received = 0
    sent: list[Message] = []

    async def receive() -> Message:  # a client that would stream forever
        nonlocal n_received
        n_received += 1
        return {"type": "http.request", "body": b"x" * 1000, "more_body": True}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/events", "raw_path": b"/events", "root_path": "",
        "query_string": b"", "headers": [(b"host", b"node"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1), "server": ("node", 80),
    }  # fmt: skip
    await api(scope, receive, send)
    assert n_received == 5  # 5000 bytes: over 4096, and not one chunk more
    assert sent[0]["status"] == 413
    assert (b"x-streamlearn-node", NODE.encode()) in sent[0]["headers"]


async def test_a_422_quotes_a_huge_input_only_in_part(make_client: MakeClient) -> None:
    client = await make_client(max_request_bytes=8 * 1024 * 1024)
    body = {"features": {"x": "y" * 2_000_000}, "instances": [{"x": 1}]}
    response = await client.post("/models/prices/predict", json=body)
    assert response.status_code == 422
    assert len(response.content) < 2000
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body"]
    assert error["input"].startswith('{"features":{"x":"yyy')
    assert len(error["input"]) == EXCERPT_CHARS + 1 and error["input"].endswith("…")


async def test_a_million_bad_values_cost_one_error(make_client: MakeClient) -> None:
    client = await make_client(max_request_bytes=8 * 1024 * 1024)
    body = {"features": {f"k{i}": [i] for i in range(300_000)}}
    started = time.monotonic()
    response = await client.post("/models/prices/predict", json=body)
    assert response.status_code == 422
    # pydantic names the first bad value once per type it tried (bool, int, float, str)
    assert {tuple(e["loc"][:3]) for e in response.json()["detail"]} == {("body", "features", "k0")}
    assert time.monotonic() - started < 5  # not one error per value (minutes on this machine)


async def test_an_answer_lists_at_most_a_hundred_errors(make_client: MakeClient) -> None:
    client = await make_client(max_request_bytes=1_000_000)
    response = await client.post("/events", json=[1] * 1000)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == MAX_ERRORS + 1
    assert detail[0] == {
        "loc": ["body", 0], "msg": "[0].event must be a JSON object, got a number",
        "type": "value_error",
    }  # fmt: skip
    assert detail[-1] == {
        "loc": ["body"],
        "msg": "900 more errors not shown",
        "type": "too_many_errors",
    }


async def test_an_event_error_quotes_a_long_value_only_in_part(make_client: MakeClient) -> None:
    client = await make_client(max_request_bytes=1_000_000)
    event = {"event_id": "a", "model": "clicks", "features": {}, "ts": "x" * 100_000}
    response = await client.post("/events", json=event)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "ts"]
    assert error["msg"].startswith("ts must be an RFC 3339 string or epoch milliseconds, got 'xx")
    assert len(error["msg"]) <= 301 and error["msg"].endswith("…")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "short"),
        (None, None),
        (12.5, 12.5),
        ({"x": [1, True, None]}, {"x": [1, True, None]}),
        (math.nan, None),  # as JSON writes it: never NaN in an answer
        (ValueError("bad"), "bad"),  # what JSON cannot hold is quoted as its str
        ({1: "a"}, {"1": "a"}),
    ],
)
def test_a_short_value_is_quoted_whole(value: object, expected: object) -> None:
    assert excerpt(value) == expected


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        "y" * 1000,
        list(range(1000)),
        10**5000,  # past 64 bits (orjson refuses it) and 4300 digits (so does repr)
        _nested(1000),  # deeper than orjson goes
    ],
    ids=["string", "list", "huge-int", "deep-list"],
)
def test_a_long_value_is_cut_short(value: object) -> None:
    quoted = excerpt(value)
    assert isinstance(quoted, str) and len(quoted) <= EXCERPT_CHARS + 1


async def test_an_event_the_agents_would_dead_letter_is_refused(make_client: MakeClient) -> None:
    client = await make_client(max_request_bytes=100_000, max_event_bytes=1024)
    big = {"event_id": "b", "model": "clicks", "features": {"x": "y" * 2000}}
    response = await client.post("/events", json=[{"event_id": "a", "model": "clicks",
                                                   "features": {}}, big])  # fmt: skip
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", 1]
    size = len(orjson.dumps(big))
    assert error["msg"] == f"[1].event is {size} bytes, over the limit of 1024 bytes"


def test_a_large_batch_is_cut_into_messages_the_agents_take() -> None:
    events = [orjson.dumps({"event_id": str(i), "model": "m", "features": {"x": i}})
              for i in range(1000)]  # fmt: skip
    messages = list(to_messages(events, max_bytes=1024))
    assert len(messages) > 1 and all(len(m) <= 1024 for m in messages)
    decoded = [orjson.loads(m) for m in messages]
    assert [e for m in decoded for e in (m if isinstance(m, list) else [m])] == [
        orjson.loads(e) for e in events
    ]
