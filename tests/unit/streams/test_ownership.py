"""Who owns which model, read through the cluster view from a stand-in Faust app."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from streams.app import create_faust_app
from streams.cluster import Cluster
from streams.learning.spec import ModelSpec
from streams.ownership import Ownership, PartitionState
from streams.settings import Settings
from tests.unit.streams.factories import Assignment, learn, lifecycle, registry

HERE, THERE = "http://here:8000", "http://there:8000"


class StandInConsumer:
    def __init__(self, assignment: set[TP], highwater: Mapping[TP, int]) -> None:
        self._assignment = assignment
        self._highwater = dict(highwater)

    def assignment(self) -> set[TP]:
        return set(self._assignment)

    def highwater(self, tp: TP) -> int:
        value: int = self._highwater[tp]
        return value  # KeyError before the first fetch, as in aiokafka


class StandInApp:
    """The parts of a Faust app that :class:`Cluster` reads: the assignor's view of the
    group, the consumer (``None`` until the worker starts it), the rebalancing flag."""

    def __init__(self, distribution: Mapping[str, Mapping[str, list[int]]]) -> None:
        self.conf = SimpleNamespace(canonical_url=HERE)
        self.assignor = SimpleNamespace(external_topics_metadata=lambda: distribution)
        self.rebalancing = False
        self._consumer: StandInConsumer | None = None


def two_models() -> tuple[Any, str, str]:
    """A registry of four partitions with models ``a`` and ``b`` on different ones."""
    specs = {n: ModelSpec(name=n, task="regression", pipeline="linear_model.LinearRegression()")
             for n in ("a", "b", "c", "d", "e")}  # fmt: skip
    reg = registry(partitions=4, **specs)
    by_partition = {reg.partition_of(n): n for n in specs}
    assert len(by_partition) >= 2, "the test needs two models on different partitions"
    mine, theirs = sorted(by_partition.values())[:2]
    return reg, mine, theirs


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Ownership, StandInApp, str, str]:
    reg, mine, theirs = two_models()
    app = StandInApp({HERE: {"ev": [reg.partition_of(mine)], "lb": [reg.partition_of(mine)]},
                      THERE: {"ev": [reg.partition_of(theirs)]}})  # fmt: skip
    cycle = lifecycle(reg, tmp_path, assignment=Assignment())
    return Ownership(Cluster(app), reg, cycle), app, mine, theirs


def test_the_owner_of_a_model_is_the_member_holding_its_partition(
    parts: tuple[Ownership, StandInApp, str, str],
) -> None:
    ownership, _, mine, theirs = parts
    assert ownership.url == HERE
    assert ownership.owner_of(mine) == HERE and ownership.owner_of(theirs) == THERE
    assert ownership.members() == [HERE, THERE]
    where = {ownership.registry.partition_of(mine): HERE,
             ownership.registry.partition_of(theirs): THERE}  # fmt: skip
    for name in ownership.registry.models:  # a partition nobody holds (moving): no owner
        assert ownership.owner_of(name) == where.get(ownership.registry.partition_of(name))


def test_live_models_and_readiness_follow_the_lifecycle(
    parts: tuple[Ownership, StandInApp, str, str],
) -> None:
    ownership, app, mine, _ = parts
    assert ownership.ready() == (False, "the Kafka consumer has not started")
    app._consumer = StandInConsumer(set(), {})
    app.rebalancing = True
    assert ownership.ready() == (False, "the consumer group is rebalancing")
    app.rebalancing = False
    assert ownership.ready() == (False, "the consumer has not joined the group yet")
    ownership.lifecycle.assigned = True
    assert ownership.ready() == (False, "models are being restored from their snapshots")
    ownership.lifecycle.restored = True
    assert ownership.ready() == (True, "ready")
    assert not ownership.is_live(mine) and ownership.live() == []
    ownership.lifecycle.live.add(mine)
    assert ownership.is_live(mine) and ownership.live() == [mine]


def test_partitions_held_with_their_lag(parts: tuple[Ownership, StandInApp, str, str]) -> None:
    ownership, app, mine, _ = parts
    assert ownership.partitions() == []  # no consumer yet
    p = ownership.registry.partition_of(mine)
    app._consumer = StandInConsumer({TP("ev", p), TP("lb", p), TP("snapshots", p)},
                                    {TP("ev", p): 12})  # fmt: skip
    ownership.registry.positions[f"ev:{p}"] = 5
    assert ownership.partitions() == [
        PartitionState("ev", p, highwater=12, position=5),
        PartitionState("lb", p, highwater=None, position=None),  # not fetched yet
    ]
    assert [s.lag for s in ownership.partitions()] == [7, None]


def test_an_unstarted_faust_app_is_a_group_of_one(tmp_path: Path) -> None:
    app = create_faust_app(Settings(state_dir=tmp_path, http_port=8123))
    cluster = Cluster(app)
    assert cluster.url == "http://127.0.0.1:8123"
    assert not cluster.started and not cluster.rebalancing
    assert cluster.assignment() == set() and cluster.distribution() == {}
    reg = registry()
    learn(reg, 1)
    ownership = Ownership(cluster, reg, lifecycle(reg, tmp_path / "s"))
    assert ownership.owner_of("m") is None and ownership.members() == [cluster.url]
