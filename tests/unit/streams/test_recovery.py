"""Restoring a model picks the newest snapshot that passes its checks."""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.learning.spec import ModelSpec
from streams.recovery import Recovery
from streams.settings import Settings


def registry() -> ModelRegistry:
    spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
    return ModelRegistry({"m": spec}, Limits(), max_event_bytes=10_000,
                         input_topics=("ev", "lb"), partitions=1)  # fmt: skip


def learn(reg: ModelRegistry, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        raw = orjson.dumps(
            {"event_id": str(i), "model": "m", "features": {"x": i}, "label": 2.0 * i}
        )
        reg.handle_events(raw, topic="ev", partition=0, offset=i, now=0.0)


async def test_a_tampered_latest_falls_back_to_the_previous_version(tmp_path: Path) -> None:
    reg = registry()
    store = SnapshotStore(tmp_path, b"key", retention=5)
    recovery = Recovery(Settings(), reg, store, snapshots_topic=None)
    learn(reg, 10)
    recovery.take(reg.get("m"))
    learn(reg, 10, start=10)
    recovery.take(reg.get("m"))
    latest = tmp_path / "m" / "v00000002.snapshot"
    latest.write_bytes(latest.read_bytes()[:-1] + b"\x00")

    fresh = registry()
    restorer = Recovery(Settings(), fresh, store, snapshots_topic=None)
    restorer.restore_latest("m")
    model = fresh.get("m")
    assert model.n_learned == 10
    assert model.offsets == {"ev:0": 10, "lb:0": 0}


async def test_resume_positions_seek_to_the_snapshot_and_replay_skips_nothing_twice(
    tmp_path: Path,
) -> None:
    from faust.types import TP

    reg = registry()
    store = SnapshotStore(tmp_path, b"key", retention=5)
    learn(reg, 10)
    Recovery(Settings(), reg, store, snapshots_topic=None).take(reg.get("m"))
    learn(reg, 5, start=10)  # learned, then lost in a crash

    fresh = registry()
    recovery = Recovery(Settings(), fresh, store, snapshots_topic=None)
    positions = await recovery.resume_positions({TP("ev", 0), TP("lb", 0), TP("other", 0)}, {})
    assert positions == {TP("ev", 0): 10, TP("lb", 0): 0}
    assert recovery.restored
    learn(fresh, 15)  # the broker redelivers 0..14: only 10..14 are new to the snapshot
    assert fresh.get("m").n_learned == 15
    assert fresh.get("m").predict({"x": 3.0}) == reg.get("m").predict({"x": 3.0})


async def test_the_snapshot_that_came_furthest_wins_local_or_published(tmp_path: Path) -> None:
    # Node A learned 0..9 and snapshotted; the model moved to node B, which learned up to 29
    # and published its snapshot. Back on A, the published one is newer than A's own.
    reg_a, reg_b = registry(), registry()
    store_a = SnapshotStore(tmp_path / "a", b"key", retention=5)
    store_b = SnapshotStore(tmp_path / "b", b"key", retention=5)
    learn(reg_a, 10)
    Recovery(Settings(), reg_a, store_a, snapshots_topic=None).take(reg_a.get("m"))
    learn(reg_b, 30)
    info = Recovery(Settings(), reg_b, store_b, snapshots_topic=None).take(reg_b.get("m"))
    published = (tmp_path / "b" / "m" / f"v{info.version:08d}.snapshot").read_bytes()

    back = registry()
    recovery = Recovery(Settings(), back, store_a, snapshots_topic=None)
    recovery.restore_latest("m", published)
    assert back.get("m").n_learned == 30
    assert back.get("m").offsets == {"ev:0": 30, "lb:0": 0}
    assert store_a.read("m")[1].offsets == {"ev:0": 30, "lb:0": 0}  # kept locally too

    # An older published snapshot loses to a newer local one; a forged one is refused.
    again = registry()
    recovery = Recovery(Settings(), again, store_a, snapshots_topic=None)
    old = (tmp_path / "a" / "m" / "v00000001.snapshot").read_bytes()
    recovery.restore_latest("m", old)
    assert again.get("m").n_learned == 30
    forged = published[:-1] + b"\x00"
    fresh_store = SnapshotStore(tmp_path / "c", b"key", retention=5)
    Recovery(Settings(), again, fresh_store, snapshots_topic=None).restore_latest("m", forged)
    assert again.get("m").n_learned == 0  # nothing trustworthy: a fresh model


async def test_an_assignment_without_its_partition_drops_the_model(tmp_path: Path) -> None:
    from faust.types import TP

    reg = registry()
    recovery = Recovery(Settings(), reg, SnapshotStore(tmp_path, b"key", 5), snapshots_topic=None)
    await recovery.resume_positions({TP("ev", 0), TP("lb", 0)}, {})
    learn(reg, 5)
    assert recovery.live == {"m"} and reg.positions == {"ev:0": 5, "lb:0": 0}
    recovery.on_assigned({TP("ev", 0), TP("lb", 0)})  # kept: still live, nothing forgotten
    assert recovery.live == {"m"} and reg.get("m").n_learned == 5 and recovery.restored
    recovery.on_assigned(set())  # moved to another node
    assert recovery.live == set() and reg.get("m").n_learned == 0 and reg.positions == {}
    assert recovery.assigned and recovery.restored  # nothing held, nothing to restore


def test_an_event_on_the_wrong_partition_is_a_dead_letter() -> None:
    spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
    reg = ModelRegistry({"m": spec}, Limits(), max_event_bytes=10_000,
                        input_topics=("ev", "lb"), partitions=4)  # fmt: skip
    right = reg.partition_of("m")
    raw = orjson.dumps({"event_id": "1", "model": "m", "features": {"x": 1}, "label": 2.0})
    wrong = (right + 1) % 4
    out = reg.handle_events(raw, topic="ev", partition=wrong, offset=0, now=0.0)
    assert out.dead_letters[0].error.startswith(
        f"an event of model 'm' arrived on partition {wrong}, but model 'm' is learned from"
        f" partition {right} of 4"
    )
    assert reg.get("m").n_learned == 0 and reg.get("m").n_dead_letters == 1
    reg.handle_events(raw, topic="ev", partition=right, offset=0, now=0.0)
    assert reg.get("m").n_learned == 1
