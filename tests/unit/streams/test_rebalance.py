"""Restoring a model picks the newest snapshot that passes its checks; models move exactly
once between nodes (the rebalance lifecycle, without a broker)."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest
from faust.types import TP

from streams.learning.snapshots import SnapshotStore
from tests.unit.streams.factories import (
    KEY,
    Assignment,
    StandInTopic,
    learn,
    lifecycle,
    registry,
)

HELD = {TP("ev", 0), TP("lb", 0)}


async def test_a_tampered_latest_falls_back_to_the_previous_version(tmp_path: Path) -> None:
    reg = registry()
    writer = lifecycle(reg, tmp_path)
    learn(reg, 10)
    writer.take(reg.get("m"))
    learn(reg, 10, start=10)
    writer.take(reg.get("m"))
    latest = tmp_path / "m" / "v00000002.snapshot"
    latest.write_bytes(latest.read_bytes()[:-1] + b"\x00")

    fresh = registry()
    lifecycle(fresh, tmp_path).restore_latest("m")
    model = fresh.get("m")
    assert model.n_learned == 10
    assert model.offsets == {"ev:0": 10, "lb:0": 0}


async def test_resume_positions_seek_to_the_snapshot_and_replay_skips_nothing_twice(
    tmp_path: Path,
) -> None:
    reg = registry()
    learn(reg, 10)
    lifecycle(reg, tmp_path).take(reg.get("m"))
    learn(reg, 5, start=10)  # learned, then lost in a crash

    fresh = registry()
    assigned = {*HELD, TP("other", 0)}
    restorer = lifecycle(fresh, tmp_path, assignment=Assignment(assigned))
    positions = await restorer.resume_positions(assigned, {})
    assert positions == {TP("ev", 0): 10, TP("lb", 0): 0}
    assert restorer.restored
    learn(fresh, 15)  # the broker redelivers 0..14: only 10..14 are new to the snapshot
    assert fresh.get("m").n_learned == 15
    assert fresh.get("m").predict({"x": 3.0}) == reg.get("m").predict({"x": 3.0})


async def test_the_snapshot_that_came_furthest_wins_local_or_published(tmp_path: Path) -> None:
    # Node A learned 0..9 and snapshotted; the model moved to node B, which learned up to 29
    # and published its snapshot. Back on A, the published one is newer than A's own.
    reg_a, reg_b = registry(), registry()
    learn(reg_a, 10)
    lifecycle(reg_a, tmp_path / "a").take(reg_a.get("m"))
    learn(reg_b, 30)
    info = lifecycle(reg_b, tmp_path / "b").take(reg_b.get("m"))
    published = (tmp_path / "b" / "m" / f"v{info.version:08d}.snapshot").read_bytes()

    back = registry()
    lifecycle(back, tmp_path / "a").restore_latest("m", published)
    assert back.get("m").n_learned == 30
    assert back.get("m").offsets == {"ev:0": 30, "lb:0": 0}
    store_a = SnapshotStore(tmp_path / "a", KEY, retention=5)
    assert store_a.read("m")[1].offsets == {"ev:0": 30, "lb:0": 0}  # kept locally too

    # An older published snapshot loses to a newer local one; a forged one is refused.
    again = registry()
    old = (tmp_path / "a" / "m" / "v00000001.snapshot").read_bytes()
    lifecycle(again, tmp_path / "a").restore_latest("m", old)
    assert again.get("m").n_learned == 30
    forged = published[:-1] + b"\x00"
    lifecycle(again, tmp_path / "c").restore_latest("m", forged)
    assert again.get("m").n_learned == 0  # nothing trustworthy: a fresh model


async def test_an_arriving_model_is_restored_from_the_topic(tmp_path: Path) -> None:
    # The previous owner published its snapshot at 20; this node has none of its own.
    previous = registry()
    learn(previous, 20)
    info = lifecycle(previous, tmp_path / "prev").take(previous.get("m"))
    value = (tmp_path / "prev" / "m" / f"v{info.version:08d}.snapshot").read_bytes()

    reg = registry()
    arriving = lifecycle(reg, tmp_path / "next", {"m": value}, Assignment(HELD))
    positions = await arriving.resume_positions(HELD, {})
    assert positions == {TP("ev", 0): 20, TP("lb", 0): 0}
    assert reg.get("m").n_learned == 20 and arriving.live == {"m"}
    topic = arriving.topic
    assert isinstance(topic, StandInTopic) and topic.asked == [{"m": 0}]
    # Held already: a second call for the same assignment restores nothing, asks nothing.
    await arriving.resume_positions(HELD, {})
    assert topic.asked == [{"m": 0}]


async def test_an_assignment_that_moved_on_during_the_restore_is_dropped(tmp_path: Path) -> None:
    reg = registry()
    moved = lifecycle(reg, tmp_path, assignment=Assignment(set()))  # revoked meanwhile
    await moved.resume_positions(HELD, {})
    assert moved.live == set() and moved.assigned and moved.restored


async def test_an_assignment_without_its_partition_drops_the_model(tmp_path: Path) -> None:
    reg = registry()
    held = lifecycle(reg, tmp_path, assignment=Assignment(HELD))
    await held.resume_positions(HELD, {})
    learn(reg, 5)
    assert held.live == {"m"} and reg.positions == {"ev:0": 5, "lb:0": 0}
    held.on_assigned(HELD)  # kept: still live, nothing forgotten
    assert held.live == {"m"} and reg.get("m").n_learned == 5 and held.restored
    held.on_assigned(set())  # moved to another node
    assert held.live == set() and reg.get("m").n_learned == 0 and reg.positions == {}
    assert held.assigned and held.restored  # nothing held, nothing to restore


async def test_hand_over_publishes_a_model_only_when_it_moved(tmp_path: Path) -> None:
    reg = registry()
    moving = lifecycle(reg, tmp_path, assignment=Assignment(HELD))
    await moving.resume_positions(HELD, {})
    topic = moving.topic
    assert isinstance(topic, StandInTopic)
    await moving.hand_over()  # fresh, nothing learned: nothing to hand over
    assert topic.infos == []
    learn(reg, 3)
    await moving.hand_over()
    assert [(i.model, i.offsets) for i in topic.infos] == [("m", {"ev:0": 3, "lb:0": 0})]
    await moving.hand_over()  # nothing moved since
    assert len(topic.infos) == 1


def test_an_event_on_the_wrong_partition_is_moved_to_its_models() -> None:
    reg = registry(partitions=4)
    right = reg.partition_of("m")
    raw = orjson.dumps({"event_id": "1", "model": "m", "features": {"x": 1}, "label": 2.0})
    wrong = (right + 1) % 4
    out = reg.handle_events(raw, topic="ev", partition=wrong, offset=0, now=0.0)
    assert not out.dead_letters and [r.partition for r in out.reroutes] == [right]
    assert reg.get("m").n_learned == 0
    reg.handle_events(out.reroutes[0].value, topic="ev", partition=right, offset=0, now=0.0,
                      rerouted=True)  # fmt: skip
    assert reg.get("m").n_learned == 1


async def test_a_background_snapshot_holds_the_state_it_was_taken_at(tmp_path: Path) -> None:
    reg = registry()
    writer = lifecycle(reg, tmp_path)
    learn(reg, 10)
    written = await writer.snapshot_soon(reg.get("m"))
    learn(reg, 5, start=10)  # learned while the child writes
    info = await written
    assert info.offsets == {"ev:0": 10, "lb:0": 0} and not writer.writing
    state, _ = writer.store.read("m", info.version)
    assert state["counters"].n_learned == 10
    assert reg.get("m").n_learned_at_snapshot == 10


async def test_a_failed_background_snapshot_leaves_the_model_due(tmp_path: Path) -> None:
    reg = registry()
    writer = lifecycle(reg, tmp_path)
    learn(reg, 10)
    (tmp_path / "m").write_text("a file where the model's folder goes")  # the child fails
    model = reg.get("m")
    written = await writer.snapshot_soon(model)
    assert model.n_learned_at_snapshot == 10  # taken, as far as learning knows
    try:
        await written
    except OSError as exc:
        assert "exit code 1" in str(exc)
    else:
        raise AssertionError("the write should have failed")
    assert model.n_learned_at_snapshot == 0 and model.offsets == {}


async def test_a_snapshot_is_written_in_the_node_when_it_cannot_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_memory() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_memory)
    reg = registry()
    writer = lifecycle(reg, tmp_path)
    learn(reg, 10)
    info = await (await writer.snapshot_soon(reg.get("m")))
    assert info.offsets == {"ev:0": 10, "lb:0": 0} and not writer.writing
    state, _ = writer.store.read("m", info.version)
    assert state["counters"].n_learned == 10


async def test_a_hand_over_comes_after_the_background_snapshot(tmp_path: Path) -> None:
    reg = registry()
    writer = lifecycle(reg, tmp_path)
    writer.live.add("m")
    learn(reg, 10)
    await writer.snapshot_soon(reg.get("m"))
    learn(reg, 5, start=10)
    await writer.hand_over()
    topic = writer.topic
    assert isinstance(topic, StandInTopic)
    assert [(i.version, i.offsets["ev:0"]) for i in topic.infos] == [(1, 10), (2, 15)]
