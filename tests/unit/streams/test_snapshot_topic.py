"""Snapshots go on the topic whole, or as a pointer above the inline limit; both read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.learning.errors import SnapshotRefused
from streams.learning.records import SnapshotPointer
from streams.learning.snapshots import MAGIC, SnapshotStore
from streams.settings import Settings
from streams.snapshot_topic import SnapshotTopic
from tests.unit.streams.factories import KEY, RecordingFaustTopic, learn, lifecycle, registry


async def test_a_small_snapshot_travels_whole(tmp_path: Path) -> None:
    reg = registry()
    learn(reg, 5)
    info = lifecycle(reg, tmp_path).take(reg.get("m"))
    faust_topic = RecordingFaustTopic()
    topic = SnapshotTopic(Settings(), faust_topic, SnapshotStore(tmp_path, KEY, retention=5))
    await topic.publish(info, wait=True)
    ((key, value),) = faust_topic.sent
    assert key == b"m" and value.startswith(MAGIC) and len(value) == info.bytes
    header, _ = topic.open("m", value)
    assert header["offsets"] == {"ev:0": 5, "lb:0": 0} and header["version"] == 1
    with pytest.raises(SnapshotRefused, match="is of 'm'"):
        topic.open("other", value)


async def test_a_large_snapshot_travels_as_a_pointer_to_its_file(tmp_path: Path) -> None:
    reg = registry()
    learn(reg, 5)
    info = lifecycle(reg, tmp_path).take(reg.get("m"))
    faust_topic = RecordingFaustTopic()
    # (below the smallest limit Settings accepts: this snapshot is small)
    settings = Settings().model_copy(update={"snapshot_inline_max_bytes": info.bytes - 1})
    topic = SnapshotTopic(settings, faust_topic, SnapshotStore(tmp_path, KEY, retention=5))
    await topic.publish_or_log(info)
    ((key, value),) = faust_topic.sent
    assert key == b"m"
    pointer = SnapshotPointer.decode(value)
    assert (pointer.model, pointer.version, pointer.bytes) == ("m", 1, info.bytes)
    assert pointer.path == str(tmp_path / "m" / "v00000001.snapshot")
    header, _ = topic.open("m", value)  # read through the shared volume
    assert header["offsets"] == {"ev:0": 5, "lb:0": 0}


async def test_a_snapshot_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    reg = registry()
    learn(reg, 5)
    info = lifecycle(reg, tmp_path).take(reg.get("m"))
    value = (tmp_path / "m" / f"v{info.version:08d}.snapshot").read_bytes()
    other = SnapshotTopic(Settings(), None, SnapshotStore(tmp_path, b"other key", retention=5))
    with pytest.raises(SnapshotRefused, match="signature does not match"):
        other.open("m", value)
