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
    await restorer.restore_latest("m")
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
