"""The registry's routes: deploy, change and retire models over HTTP (admin), read their specs.

A node holding every partition, over an in-memory models topic and snapshots topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import TopicPartition

from app.main import create_api
from streams.node import build_node
from streams.settings import Settings
from streams.topics import CONTRACT_TOPICS, Topics
from tests.unit.streams.factories import (
    Assignment,
    MemoryModelsTopic,
    RecordingFaustTopic,
    StandInTopic,
)

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODELS = """
[models.clicks]
task = "binary"
pipeline = "linear_model.LogisticRegression()"
"""
TREE = {"task": "binary", "pipeline": "tree.HoeffdingTreeClassifier()"}


@dataclass
class RegistryNode:
    client: httpx.AsyncClient
    topic: MemoryModelsTopic
    audit: list[dict[str, object]]
    topics: Topics

    def written(self) -> list[tuple[str, bytes | None]]:
        return [entry for log in self.topic.log for entry in log]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[RegistryNode]:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    settings = Settings(models=models, state_dir=tmp_path / "state", topic_partitions=2,
                        admin_token=TOKEN)  # fmt: skip
    built = build_node(settings)
    topic = MemoryModelsTopic(partitions=2)
    built.deployments.topic = topic
    built.lifecycle.topic = StandInTopic(built.store)
    held = {TopicPartition(t, p) for t in built.registry.input_topics for p in range(2)}
    built.lifecycle.assignment = Assignment(held)
    await built.deployments.start()
    await built.lifecycle.resume_positions(held, {})
    built.lifecycle.on_assigned(held)
    sent: list[dict[str, object]] = []
    built.audit.topic.send_soon = lambda key, value: sent.append(orjson.loads(value))
    api = create_api(built)
    topics = Topics(*(RecordingFaustTopic() for _ in CONTRACT_TOPICS))
    api.state.topics = topics
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield RegistryNode(client, topic, sent, topics)
    await built.deployments.stop()


async def test_a_model_is_deployed_changed_and_retired_without_a_restart(
    node: RegistryNode,
) -> None:
    client = node.client
    created = await client.put("/models/fresh", json=TREE, headers=AUTH)
    assert created.status_code == 200, created.text
    assert created.json()["change"] == "created" and created.json()["version"] == 1
    assert [m["name"] for m in (await client.get("/models")).json()] == ["clicks", "fresh"]
    assert (await client.get("/models/fresh")).json()["model_version"] == 1
    changed = await client.put("/models/fresh", json={**TREE, "snapshot_every": 5}, headers=AUTH)
    assert changed.json()["change"] == "in_place" and changed.json()["version"] == 2
    spec = (await client.get("/models/fresh/spec")).json()
    assert spec["version"] == 2 and spec["spec"]["snapshot_every"] == 5
    assert spec["spec"]["metrics"] == ["Accuracy", "Precision", "Recall", "F1", "ROCAUC", "LogLoss"]
    history = (await client.get("/models/fresh/spec/history")).json()
    assert [h["version"] for h in history] == [1, 2]
    assert history[0]["who"] == history[1]["who"] and len(history[0]["who"]) == 16
    body = (await client.get("/openapi.json")).json()["paths"]["/events"]["post"]["requestBody"]
    event = body["content"]["application/json"]["schema"]["oneOf"][0]
    assert event["properties"]["model"]["enum"] == ["clicks", "fresh"]
    retired = await client.delete("/models/fresh", headers=AUTH)
    assert retired.status_code == 200 and retired.json()["change"] == "retired"
    assert [m["name"] for m in (await client.get("/models")).json()] == ["clicks"]
    assert (await client.get("/models/fresh/spec")).status_code == 404
    metrics = (await client.get("/metrics")).text
    assert 'model="clicks"' in metrics and 'model="fresh"' not in metrics
    assert [(e["action"], e["model"], e["status"]) for e in node.audit] == [
        ("deploy", "fresh", 200), ("deploy", "fresh", 200), ("retire", "fresh", 200),
    ]  # fmt: skip


async def test_the_token_is_checked_before_the_body_and_the_name(node: RegistryNode) -> None:
    before = node.written()
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for body in (b"{not json", orjson.dumps(TREE)):
            answer = await node.client.put("/models/a:b", content=body, headers=headers)
            assert answer.status_code == 401, answer.text
        assert (await node.client.delete("/models/nobody", headers=headers)).status_code == 401
    assert node.written() == before
    assert {e["status"] for e in node.audit} == {401}


@pytest.mark.parametrize(
    ("path", "body", "loc", "words"),
    [
        ("/models/fresh", {"task": "binary"}, ["body", "pipeline"], "Field required"),
        ("/models/fresh", {**TREE, "task": "regression"}, ["body", "pipeline"], "regressor"),
        ("/models/fresh", {**TREE, "metrics": ["MAE"]}, ["body", "metrics"], "not available"),
        ("/models/fresh", {**TREE, "colour": 1}, ["body", "colour"], "Extra inputs"),
        ("/models/fresh", {**TREE, "name": "x"}, ["path", "name"], "named by its path"),
        ("/models/fresh", [TREE], ["body"], "must be an object"),
        ("/models/a:b", TREE, ["path", "name"], "kept for the models a template makes"),
        ("/models/fresh", {**TREE, "max_models": 3}, ["body", "key_field"], "a template needs"),
        ("/models/fresh", {**TREE, "key_field": 3}, ["body", "key_field"], "a feature name"),
        ("/models/a%20b", TREE, ["path", "name"], "a model name is"),
        ("/models/" + "x" * 65, TREE, ["path", "name"], "a model name is"),
    ],
)
async def test_a_bad_spec_or_name_is_a_422_naming_it_and_changes_nothing(
    node: RegistryNode, path: str, body: object, loc: list[str], words: str
) -> None:
    before = node.written()
    answer = await node.client.put(path, json=body, headers=AUTH)
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["detail"]
    assert error["loc"] == loc and words in error["msg"]
    assert node.written() == before


async def test_a_body_that_is_not_json_is_a_422(node: RegistryNode) -> None:
    answer = await node.client.put("/models/fresh", content=b"{nope", headers=AUTH)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body"]


async def test_deleting_or_reading_an_unknown_model_is_a_404(node: RegistryNode) -> None:
    before = node.written()
    answer = await node.client.delete("/models/nobody", headers=AUTH)
    assert answer.status_code == 404 and answer.json() == {"detail": "unknown model 'nobody'"}
    assert (await node.client.get("/models/nobody/spec")).status_code == 404
    assert (await node.client.get("/models/nobody/spec/history")).status_code == 404
    assert node.written() == before


async def test_the_seeded_model_has_its_spec_from_the_file(node: RegistryNode) -> None:
    spec = (await node.client.get("/models/clicks/spec")).json()
    assert spec["version"] == 1 and spec["who"] == "file"
    assert spec["spec"]["pipeline"] == TREE["pipeline"].replace(
        "tree.HoeffdingTreeClassifier()", "linear_model.LogisticRegression()"
    )


async def test_a_template_makes_models_that_are_listed_and_served(node: RegistryNode) -> None:
    client = node.client
    template = {**TREE, "key_field": "merchant", "max_models": 5}
    created = await client.put("/models/fraud", json=template, headers=AUTH)
    assert created.status_code == 200 and created.json()["change"] == "created", created.text
    assert (await client.get("/models/fraud/spec")).json()["spec"]["key_field"] == "merchant"
    event = {"event_id": "1", "model": "fraud", "features": {"merchant": "acme"}, "label": True}
    assert (await client.post("/events", json=event)).status_code == 202
    events_topic = node.topics.events_topic
    assert isinstance(events_topic, RecordingFaustTopic)
    assert [key for key, _ in events_topic.sent] == [b"fraud"]
    body = (await client.get("/openapi.json")).json()["paths"]["/events"]["post"]["requestBody"]
    event_schema = body["content"]["application/json"]["schema"]["oneOf"][0]
    assert event_schema["properties"]["model"]["enum"] == ["clicks", "fraud"]
    clicks = await client.put("/models/clicks", json=template, headers=AUTH)
    assert clicks.status_code == 422 and "retire it first" in clicks.text
