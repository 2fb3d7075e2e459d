"""Admin actions: snapshot now, promote a challenger, roll back; each published at once."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.admin import Admin
from streams.agents.publish import Publisher
from streams.learning.errors import UnknownCandidate
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec
from streams.topics import CONTRACT_TOPICS, Topics
from tests.unit.streams.factories import RecordingFaustTopic, StandInTopic, lifecycle, registry


def admin_over(reg: ModelRegistry, path: Path) -> tuple[Admin, StandInTopic, Topics]:
    cycle = lifecycle(reg, path)
    assert isinstance(cycle.topic, StandInTopic)
    topics = Topics(*(RecordingFaustTopic() for _ in CONTRACT_TOPICS))
    return Admin(reg, cycle, cycle.store, cycle.topic, Publisher(topics)), cycle.topic, topics


def learn_binary(reg: ModelRegistry, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        raw = orjson.dumps({"event_id": str(i), "model": "m", "features": {"x": i % 7},
                            "label": i % 2 == 0})  # fmt: skip
        reg.handle_events(raw, topic="ev", partition=0, offset=i, now=0.0)


@pytest.fixture
def reg() -> ModelRegistry:
    spec = ModelSpec(name="m", task="binary", pipeline="linear_model.LogisticRegression()",
                     challengers={"tree": "tree.HoeffdingTreeClassifier()"})  # fmt: skip
    return registry(m=spec)


async def test_a_promotion_is_snapshotted_before_and_after_and_published(
    reg: ModelRegistry, tmp_path: Path
) -> None:
    admin, topic, topics = admin_over(reg, tmp_path)
    learn_binary(reg, 20)
    record = await admin.promote("m", "tree")
    assert record["to"] == "tree" and record["reason"] == "admin"
    assert record["snapshot_before"] == 1
    assert [info.version for info in topic.infos] == [1, 2]
    ((key, value),) = topics.promotions_topic.sent
    assert key == b"m" and orjson.loads(value)["to"] == "tree"
    assert reg.get("m").model_version == 2


async def test_an_unknown_challenger_takes_no_snapshot(reg: ModelRegistry, tmp_path: Path) -> None:
    admin, topic, topics = admin_over(reg, tmp_path)
    with pytest.raises(UnknownCandidate):
        await admin.promote("m", "nobody")
    assert admin.store.versions("m") == [] and topic.infos == []
    assert topics.promotions_topic.sent == []


async def test_a_rollback_keeps_todays_offsets_and_is_published(
    reg: ModelRegistry, tmp_path: Path
) -> None:
    admin, topic, _ = admin_over(reg, tmp_path)
    learn_binary(reg, 10)
    first = await admin.snapshot(reg.get("m"))
    learn_binary(reg, 10, start=10)
    model, info = await admin.rollback("m", first.version)
    assert info == first
    assert model.n_learned == 10 and model.model_version == 2
    assert model.offsets == {"ev:0": 20, "lb:0": 0}  # it learns on from here
    assert [i.version for i in topic.infos] == [1, 2]  # the rolled-back state, published
    assert topic.infos[-1].offsets == {"ev:0": 20, "lb:0": 0}
