"""The node's registry on the models topic: seeded from the file once, then deploy, change in
place, rebuild, retire, on the owner, and followed by every other node.

The topic here is an in-memory log (the promise on a real broker, with kill -9 and two nodes,
is in ``tests/integration/test_registry.py``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import TopicPartition

from streams.deployments import Deployments
from streams.learning.catalog import spec_from_fields, version_from_fields
from streams.learning.errors import ModelUnavailable, UnknownModel
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec
from streams.rebalance import Lifecycle
from tests.unit.streams.factories import (
    Assignment,
    MemoryModelsTopic,
    StandInTopic,
    event,
    learn,
    lifecycle,
    registry,
)

LINEAR = {"task": "regression", "pipeline": "linear_model.LinearRegression()"}
TREE = {"task": "regression", "pipeline": "tree.HoeffdingTreeRegressor()"}
HELD = {TopicPartition("ev", 0), TopicPartition("lb", 0)}


def spec(name: str = "m", **fields: object) -> ModelSpec:
    return spec_from_fields(name, {**LINEAR, **fields})


@dataclass
class StandInNode:
    registry: ModelRegistry
    lifecycle: Lifecycle
    deployments: Deployments
    topic: MemoryModelsTopic

    @property
    def published(self) -> StandInTopic:
        assert isinstance(self.lifecycle.topic, StandInTopic)
        return self.lifecycle.topic


class Group:
    """Stand-in nodes sharing one models topic (a log per partition)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.log: list[list[tuple[str, bytes | None]]] = [[]]
        self.nodes: list[StandInNode] = []

    async def node(self, *, holds: bool = True, **file: ModelSpec) -> StandInNode:
        specs = file or {"m": spec()}
        reg = registry(1, **specs)
        path = self.tmp_path / f"n{len(self.nodes)}"
        cycle = lifecycle(reg, path, assignment=Assignment(set(HELD) if holds else set()))
        topic = MemoryModelsTopic(log=self.log)
        deployments = Deployments(reg, cycle, topic, specs)
        await deployments.start()
        await cycle.resume_positions(set(HELD) if holds else set(), {})
        cycle.on_assigned(set(HELD) if holds else set())
        node = StandInNode(reg, cycle, deployments, topic)
        self.nodes.append(node)
        return node

    async def stop(self) -> None:
        for node in self.nodes:
            await node.deployments.stop()


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[Group]:
    g = Group(tmp_path)
    yield g
    await g.stop()


async def test_the_file_seeds_an_empty_registry_and_later_only_differs(
    group: Group, caplog: pytest.LogCaptureFixture
) -> None:
    first = await group.node(m=spec(), n=spec("n"))
    assert [(name, orjson.loads(v or b"")["who"]) for name, v in group.log[0]] == [
        ("m", "file"), ("n", "file"),
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        second = await group.node(m=spec(snapshot_every=3), o=spec("o"))
    assert sorted(second.registry.models) == ["m", "n"]  # the topic is the truth
    assert second.registry.get("m").spec == first.registry.get("m").spec
    assert len(group.log[0]) == 2  # nothing written
    said = caplog.text
    assert "'m' differs from the registry in snapshot_every" in said
    assert "'o' is not in the registry" in said and "'n' is in the registry but not" in said


async def test_a_new_model_learns_what_is_written_after_it_is_deployed(group: Group) -> None:
    node = await group.node()
    node.topic.input_ends = {"ev:0": 5, "lb:0": 0}
    change = await node.deployments.put(spec("fresh"), who="abc")
    assert change.kind == "created" and change.new is not None
    assert change.new.offsets == {"ev:0": 5, "lb:0": 0} and change.new.who == "abc"
    assert "fresh" in node.lifecycle.live
    for offset in range(10):
        node.registry.handle_events(event(offset, "fresh"), topic="ev", partition=0,
                                    offset=offset, now=0.0)  # fmt: skip
    assert node.registry.get("fresh").n_learned == 5  # offsets 5..9
    assert [info.model for info in node.published.infos] == ["fresh"]


async def test_a_setting_applies_in_place_and_a_pipeline_rebuilds(group: Group) -> None:
    node = await group.node()
    learn(node.registry, 30)
    estimator = node.registry.get("m").estimator
    change = await node.deployments.put(spec(snapshot_every=7, rolling_window=5), who=None)
    model = node.registry.get("m")
    assert change.kind == "in_place" and model.estimator is estimator and model.n_learned == 30
    assert model.spec.snapshot_every == 7 and model.metrics.window == 5
    rebuilt = await node.deployments.put(spec_from_fields("m", TREE), who=None)
    model = node.registry.get("m")
    assert rebuilt.kind == "rebuilt" and rebuilt.new is not None
    assert model.n_learned == 0 and model.model_version == 2
    assert rebuilt.new.offsets == {"ev:0": 30, "lb:0": 0}  # where the old one stopped
    assert node.lifecycle.store.versions("m")  # the old model, to roll back to
    learn(node.registry, 10, start=25)  # 25..29 were the old model's
    assert model.n_learned == 5
    assert [v.version for v in node.deployments.catalog.history("m")] == [1, 2, 3]


async def test_the_same_spec_again_writes_nothing(group: Group) -> None:
    node = await group.node()
    assert (await node.deployments.put(spec(), who=None)).kind == "unchanged"
    assert len(group.log[0]) == 1


async def test_a_retired_model_is_dead_lettered_and_its_snapshots_kept(group: Group) -> None:
    node = await group.node()
    learn(node.registry, 10)
    change = await node.deployments.retire("m")
    assert change.kind == "retired" and group.log[0][-1] == ("m", None)
    assert "m" not in node.registry.models and "m" not in node.lifecycle.live
    assert node.lifecycle.store.versions("m")
    out = node.registry.handle_events(event(11), topic="ev", partition=0, offset=11, now=0.0)
    assert out.dead_letters[0].error == "unknown model 'm'"
    with pytest.raises(UnknownModel):
        await node.deployments.retire("m")


async def test_only_the_owner_writes(group: Group) -> None:
    node = await group.node(holds=False)
    with pytest.raises(ModelUnavailable):
        await node.deployments.put(spec("fresh"), who=None)
    with pytest.raises(ModelUnavailable):
        await node.deployments.retire("m")
    assert len(group.log[0]) == 1


async def test_every_node_follows_the_owner(group: Group) -> None:
    owner = await group.node()
    other = await group.node(holds=False)
    await owner.deployments.put(spec("fresh"), who=None)
    await owner.deployments.put(spec(snapshot_every=9), who=None)
    await owner.deployments.retire("fresh")
    await other.deployments.caught_up("m")
    assert sorted(other.registry.models) == ["m"]
    assert other.registry.get("m").spec.snapshot_every == 9
    assert [v.version for v in other.deployments.catalog.history("m")] == [1, 2]


async def test_a_node_restoring_after_a_crash_starts_the_build_the_record_names(
    group: Group,
) -> None:
    """Killed right after the record was written: no snapshot of the new build exists, and
    the next owner starts it where the record says, with the record's model_version."""
    owner = await group.node()
    learn(owner.registry, 30)
    await owner.deployments.put(spec_from_fields("m", TREE), who=None)
    heir = await group.node()  # another store: it has none of the owner's snapshots
    model = heir.registry.get("m")
    assert model.spec.pipeline == TREE["pipeline"]
    assert model.offsets == {"ev:0": 30, "lb:0": 0} and model.model_version == 2
    learn(heir.registry, 40)
    assert model.n_learned == 10


async def test_a_snapshot_from_before_an_in_place_change_is_brought_up_to_it(
    group: Group, tmp_path: Path
) -> None:
    owner = await group.node()
    learn(owner.registry, 30)
    published = owner.lifecycle.take(owner.registry.get("m"))
    sealed = owner.lifecycle.store.directory / "m" / f"v{published.version:08d}.snapshot"
    await owner.deployments.put(spec(metrics=["MAE"]), who=None)
    heir = await group.node()
    heir.lifecycle.restore_latest("m", sealed.read_bytes())
    model = heir.registry.get("m")
    assert model.n_learned == 30 and list(model.metrics.cumulative()) == ["MAE"]


async def test_the_models_a_template_makes_are_recorded_and_known_to_every_node(
    group: Group,
) -> None:
    owner = await group.node()
    fraud = {**LINEAR, "key_field": "merchant", "max_models": 10}
    spec, template = version_from_fields("fraud", fraud)
    change = await owner.deployments.put(spec, None, template)
    assert change.kind == "created" and "fraud" in owner.registry.templates
    assert "fraud" not in owner.registry.models
    batch = orjson.dumps([
        {"event_id": f"e{i}", "model": "fraud", "features": {"merchant": k, "x": i}, "label": i}
        for i, k in enumerate("ab")
    ])  # fmt: skip
    out = owner.registry.handle_events(batch, topic="ev", partition=0, offset=4, now=0.0)
    await owner.deployments.register(out.created)
    assert [name for name, _ in group.log[0]] == ["m", "fraud", "fraud:a", "fraud:b"]
    assert {"fraud:a", "fraud:b"} <= owner.lifecycle.live
    assert owner.deployments.catalog.current("fraud:a").who == "template fraud"  # type: ignore[union-attr]
    other = await group.node(holds=False)
    assert "fraud" in other.registry.templates
    assert other.registry.get("fraud:a").offsets == {"ev:0": 4}
    heir = await group.node()  # no snapshot of them: each starts where it was made
    assert heir.registry.get("fraud:b").offsets == {"ev:0": 4}
    heir.registry.handle_events(batch, topic="ev", partition=0, offset=4, now=0.0)
    assert heir.registry.get("fraud:a").n_learned == 1
    retired = await owner.deployments.retire("fraud")
    assert retired.kind == "retired" and "fraud" not in owner.registry.templates


async def test_a_rebuild_is_rolled_back_to_the_model_it_replaced(group: Group) -> None:
    node = await group.node()
    learn(node.registry, 30)
    await node.deployments.put(spec_from_fields("m", TREE), who=None)
    old = node.lifecycle.store.versions("m")[0]  # taken just before the rebuild
    learn(node.registry, 10, start=30)
    assert (
        await node.deployments.roll_back("m", node.lifecycle.store.versions("m")[-1], None) is None
    )
    rolled = await node.deployments.roll_back("m", old, who="abc")
    assert rolled is not None
    model, info = rolled
    assert info.version == old and model is node.registry.get("m")
    assert model.spec.pipeline == LINEAR["pipeline"] and model.n_learned == 30
    assert model.model_version == 3 and model.offsets["ev:0"] == 40
    history = node.deployments.catalog.history("m")
    assert [(v.version, v.spec.pipeline, v.who) for v in history][-1] == (
        3,
        LINEAR["pipeline"],
        "abc",
    )
    learn(node.registry, 5, start=40)
    assert model.n_learned == 35


async def test_a_snapshot_from_before_an_in_place_change_rolls_back_keeping_the_settings(
    group: Group,
) -> None:
    node = await group.node()
    learn(node.registry, 20)
    before = node.lifecycle.take(node.registry.get("m"))
    learn(node.registry, 10, start=20)
    await node.deployments.put(spec(metrics=["MAE"]), who=None)
    rolled = await node.deployments.roll_back("m", before.version, None)
    assert rolled is not None
    model, _ = rolled
    assert model.n_learned == 20 and list(model.metrics.cumulative()) == ["MAE"]
    assert len(node.deployments.catalog.history("m")) == 2  # the registry did not change


async def test_a_template_s_model_is_restored_from_its_snapshot(group: Group) -> None:
    owner = await group.node()
    spec, template = version_from_fields("fraud", {**LINEAR, "key_field": "k"})
    await owner.deployments.put(spec, None, template)
    batch = orjson.dumps([{"event_id": str(i), "model": "fraud", "features": {"k": "a", "x": i},
                           "label": 2.0 * i} for i in range(20)])  # fmt: skip
    out = owner.registry.handle_events(batch, topic="ev", partition=0, offset=3, now=0.0)
    await owner.deployments.register(out.created)
    info = owner.lifecycle.take(owner.registry.get("fraud:a"))
    sealed = owner.lifecycle.store.directory / "fraud:a" / f"v{info.version:08d}.snapshot"
    heir = await group.node()
    heir.lifecycle.restore_latest("fraud:a", sealed.read_bytes())
    assert heir.registry.get("fraud:a").n_learned == 20


async def test_the_file_s_templates_seed_the_registry_too(group: Group) -> None:
    reg = registry(1, m=spec())
    cycle = lifecycle(reg, group.tmp_path / "t", assignment=Assignment(set(HELD)))
    fraud = version_from_fields("fraud", {**LINEAR, "key_field": "k"})
    assert fraud[1] is not None
    deployments = Deployments(reg, cycle, MemoryModelsTopic(log=group.log), {"m": spec()},
                              {"fraud": (fraud[0], fraud[1])})  # fmt: skip
    await deployments.start()
    try:
        assert [name for name, _ in group.log[0]] == ["m", "fraud"]
        assert "fraud" in reg.templates and "fraud" not in reg.models
    finally:
        await deployments.stop()
