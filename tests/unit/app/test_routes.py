"""HTTP routes over an unstarted node: validation, status codes and never-learning predict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_api
from streams.node import build_node
from streams.settings import Settings

MODELS = """
[models.clicks]
task = "binary"
pipeline = "linear_model.LogisticRegression()"

[models.prices]
task = "regression"
pipeline = "linear_model.LinearRegression()"
"""


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    settings = Settings(models=models, state_dir=tmp_path / "state", max_request_bytes=4096)
    node = build_node(settings)
    node.lifecycle.live.update(node.registry.models)  # as if the group gave it every partition
    transport = httpx.ASGITransport(app=create_api(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield client


async def test_models_are_listed_with_their_counters(client: httpx.AsyncClient) -> None:
    models = (await client.get("/models")).json()
    assert [m["name"] for m in models] == ["clicks", "prices"]
    clicks = models[0]
    for counter in ("n_events", "n_predicted", "n_learned", "n_duplicates", "n_dead_letters",
                    "n_pending_labels"):  # fmt: skip
        assert clicks[counter] == 0
    assert clicks["model_version"] == 1
    assert clicks["spec"]["pipeline"] == "linear_model.LogisticRegression()"
    assert clicks["pipeline"]["steps"] == ["AutoPreprocessor", "LogisticRegression"]


async def test_unknown_model_is_404_everywhere(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/models/nope"),
        await client.get("/models/nope/metrics"),
        await client.post("/models/nope/predict", json={"features": {}}),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "unknown model 'nope'"}


async def test_predict_one_and_many_never_learns(client: httpx.AsyncClient) -> None:
    one = await client.post("/models/prices/predict", json={"features": {"x": 1.5}})
    assert one.status_code == 200
    assert one.json() == {"model": "prices", "model_version": 1, "prediction": 0.0}
    many = await client.post("/models/clicks/predict", json={"instances": [{"x": 1}, {"x": "a"}]})
    assert many.status_code == 200
    assert len(many.json()["predictions"]) == 2
    assert (await client.get("/models/clicks")).json()["n_learned"] == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"features": {"x": [1]}}, ["body", "features", "x"]),
        ({"instances": [{"x": 1}, {"y": {"z": 1}}]}, ["body", "instances", 1, "y"]),
        ({"features": {}, "instances": [{}]}, ["body"]),
        ({"feature": {}}, ["body", "feature"]),
    ],
)
async def test_predict_422_names_the_field(
    client: httpx.AsyncClient, body: object, loc: list[object]
) -> None:
    response = await client.post("/models/clicks/predict", json=body)
    assert response.status_code == 422
    assert any(error["loc"][: len(loc)] == loc for error in response.json()["detail"])


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"model": "clicks", "features": {}}, ["body", "event_id"], "event_id must be"),
        ([{"event_id": "a", "model": "nope", "features": {}}], ["body", 0, "model"],
         "unknown model 'nope'"),
        ({"event_id": "a", "model": "clicks", "features": {"x": [1]}}, ["body", "features", "x"],
         "features.x must be"),
        ([], ["body"], "empty list"),
    ],
)  # fmt: skip
async def test_events_422_names_the_field(
    client: httpx.AsyncClient, body: object, loc: list[object], message: str
) -> None:
    response = await client.post("/events", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == loc
    assert message in error["msg"]


async def test_oversized_body_is_413(client: httpx.AsyncClient) -> None:
    big = {"event_id": "a", "model": "clicks", "features": {"x": "y" * 5000}}
    response = await client.post("/events", json=big)
    assert response.status_code == 413
    assert "over the limit of 4096 bytes" in response.json()["detail"]


async def test_not_ready_until_the_consumer_has_partitions(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["detail"] == "the Kafka consumer has not started"
    assert body["node"] == "http://127.0.0.1:8000"
    assert body["models"] == ["clicks", "prices"]


async def test_every_answer_names_the_node_that_computed_it(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/models/clicks"), await client.get("/models/nope")):
        assert response.headers["x-streamlearn-node"] == "http://127.0.0.1:8000"
    assert (await client.get("/models/clicks")).json()["owner"] == "http://127.0.0.1:8000"


async def test_a_model_live_nowhere_is_503_with_retry_after(client: httpx.AsyncClient) -> None:
    api: Any = client._transport.app  # type: ignore[attr-defined]
    api.state.ownership.lifecycle.live.discard("prices")  # its partition moved, nobody holds it yet
    for response in (
        await client.get("/models/prices"),
        await client.post("/models/prices/predict", json={"features": {"x": 1}}),
    ):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "'prices' is not live on this node" in response.json()["detail"]
    listed = {m["name"]: m for m in (await client.get("/models")).json()}
    assert listed["prices"]["status"] == "moving" and listed["prices"]["n_learned"] is None
    assert listed["clicks"]["status"] == "live" and listed["clicks"]["n_learned"] == 0


async def test_prometheus_and_openapi(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    assert 'streamlearn_learned_total{model="clicks"} 0.0' in text
    assert 'streamlearn_model_version{model="prices"} 1.0' in text
    assert 'streamlearn_pending_labels{model="clicks"} 0.0' in text
    assert 'streamlearn_drifts_total{model="clicks"} 0.0' in text
    assert 'streamlearn_model_owned{model="clicks",node="http://127.0.0.1:8000"} 1.0' in text
    assert 'streamlearn_node_info{node="http://127.0.0.1:8000"} 1.0' in text
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in ("/models", "/models/{name}", "/models/{name}/predict", "/models/{name}/metrics",
                 "/events", "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert path in paths
    assert (await client.get("/docs")).status_code == 200


async def test_admin_changes_wait_while_the_group_rebalances(tmp_path: Path) -> None:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    node = build_node(Settings(models=models, state_dir=tmp_path / "state", admin_token="t"))
    node.lifecycle.live.update(node.registry.models)
    node.app.rebalancing = True  # a node joined or left: the model may be moving
    transport = httpx.ASGITransport(app=create_api(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        auth = {"Authorization": "Bearer t"}
        response = await client.post("/models/clicks/snapshots", headers=auth)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "rebalancing" in response.json()["detail"]
        assert (await client.post("/models/clicks/snapshots")).status_code == 401
        assert (await client.get("/models/clicks/metrics")).status_code == 200  # reads go on


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        # a lone surrogate in a field name: JSON can escape it, UTF-8 cannot carry it
        ("/models/clicks/predict", b'{"features": {"x": 1}, "\\ud800": 1}', ["body"]),
        ("/models/clicks/predict", b'{"features": NaN}', ["body", "features"]),
        ("/models/clicks/predict", b"\x80 not UTF-8", ["body"]),
        ("/models/clicks/predict", b"[" * 100_000, ["body"]),  # past the recursion limit
        ("/models/clicks/predict", b'{"features": {"x": 1}, "instances": null}', ["body"]),
        # a time UTC cannot hold (year 1 at +01:00)
        ("/events", b'{"event_id": "a", "model": "clicks", "features": {},'
         b' "ts": "0001-01-01T00:00:00+01:00"}', ["body", "ts"]),
        ("/events", b'{"event_id": "a", "model": "clicks", "features": {}, "[x]": 1}',
         ["body", "[x]"]),
        ("/events", b'{"event_id": "a", "model": "clicks", "features": {"a.b": [1]}}',
         ["body", "features", "a.b"]),
        ("/labels", b'[{"event_id": "a", "model": "clicks", "label": 1}, 3]', ["body", 1]),
    ],
)  # fmt: skip
async def test_no_input_is_a_server_error(
    tmp_path: Path, path: str, body: bytes, loc: list[object]
) -> None:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    settings = Settings(models=models, state_dir=tmp_path / "state")  # the 8 MiB limit
    node = build_node(settings)
    node.lifecycle.live.update(node.registry.models)
    transport = httpx.ASGITransport(app=create_api(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        headers = {"content-type": "application/json"}
        response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
