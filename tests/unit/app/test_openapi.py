"""The OpenAPI a node serves says what its routes do: every status, every body rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.app.conftest import MakeClient


@pytest.fixture
async def openapi(make_client: MakeClient) -> dict[str, Any]:
    client = await make_client(admin_token="t")
    document: dict[str, Any] = (await client.get("/openapi.json")).json()
    return document


def test_every_status_a_route_answers_is_documented(openapi: dict[str, Any]) -> None:
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "413" in statuses, (method, path)  # BodyLimit answers on every route
            if path.startswith("/models/{name}"):
                assert {"404", "422", "503"} <= statuses, (method, path)
                retry = operation["responses"]["503"]["headers"]["Retry-After"]
                assert retry["required"] is True
            if operation.get("security"):
                assert {"401", "403", "503"} <= statuses, (method, path)
            for status in statuses - {"200", "201", "202"}:
                content = operation["responses"][status]["content"]
                assert list(content) == ["application/json"], (method, path, status)


def test_the_events_schema_is_the_decoders(openapi: dict[str, Any]) -> None:
    for path, required in (("/events", "features"), ("/labels", "label")):
        body = openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        one, many = body["schema"]["oneOf"]
        assert many == {"type": "array", "items": one, "minItems": 1}
        assert one["additionalProperties"] is False
        assert required in one["required"]
        properties = one["properties"]
        assert properties["model"] == {"type": "string", "enum": ["clicks", "prices"]}
        assert properties["event_id"] == {"type": "string", "minLength": 1, "maxLength": 128}
        string, number, null = properties["ts"]["anyOf"]
        assert string["format"] == "date-time" and string["pattern"].startswith("^[0-9]{4}-")
        assert number["minimum"] == -62_135_596_800_000  # 0001-01-01T00:00:00Z
        assert number["exclusiveMaximum"] == 253_402_300_800_000  # 10000-01-01T00:00:00Z
        assert null == {"type": "null"}


def test_a_prediction_takes_features_or_instances_never_null(openapi: dict[str, Any]) -> None:
    schema = openapi["components"]["schemas"]["PredictIn"]
    assert schema["minProperties"] == schema["maxProperties"] == 1
    assert schema["additionalProperties"] is False
    features, instances = schema["properties"]["features"], schema["properties"]["instances"]
    assert features["type"] == "object" and "default" not in features
    assert instances["type"] == "array" and instances["maxItems"] == 10_000
    assert features["additionalProperties"]["maximum"] == 1e100


async def test_a_405_allows_every_method_of_the_path(make_client: MakeClient) -> None:
    client = await make_client()
    for method in ("OPTIONS", "PUT", "DELETE"):
        response = await client.request(method, "/models/clicks/snapshots")
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.headers["x-streamlearn-node"] == "http://127.0.0.1:8000"
    assert (await client.options("/models/clicks")).headers["allow"] == "GET, PUT, DELETE"
