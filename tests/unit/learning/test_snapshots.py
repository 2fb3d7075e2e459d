"""Snapshots are signed, written atomically, and never run code they were not meant to."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from river import linear_model

from streams.learning.errors import SnapshotNotFound, SnapshotRefused
from streams.learning.model import Limits, OnlineModel
from streams.learning.snapshots import (
    MAGIC,
    SnapshotStore,
    restricted_loads,
    seal,
)
from streams.learning.spec import ModelSpec

KEY = b"k" * 32


class Payload:
    """What an attacker would pickle: unpickling it would create a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


def model_with_history() -> OnlineModel:
    spec = ModelSpec(name="m", task="binary", pipeline="linear_model.LogisticRegression()",
                     drift=("ADWIN()",))  # fmt: skip
    model = OnlineModel(spec, Limits())
    from streams.learning.events import Event

    for i in range(50):
        model.process(Event(str(i), "m", {"x": float(i), "c": "a"}, i % 2 == 0), now=float(i))
    model.process(Event("pending", "m", {"x": 1.0}), now=60.0)
    return model


def test_a_model_round_trips_exactly(tmp_path: Path) -> None:
    model = model_with_history()
    store = SnapshotStore(tmp_path, KEY, retention=3)
    info = store.write("m", model.snapshot_state({"events:0": 51}), {"events:0": 51})
    state, read_info = store.read("m")
    assert read_info == info and info.offsets == {"events:0": 51}
    twin = OnlineModel(model.spec, Limits())
    twin.restore_state(state)
    x = {"x": 3.0, "c": "a"}
    assert twin.predict(x) == model.predict(x)
    assert twin.state() == model.state()
    assert twin.n_pending_labels == 1 and twin.dedupe.seen("3", now=61.0)
    assert twin.drift.state() == model.drift.state()


def test_retention_keeps_the_newest_versions(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, KEY, retention=2)
    for _ in range(4):
        store.write("m", {"w": 1}, {})
    assert store.versions("m") == [3, 4]
    with pytest.raises(SnapshotNotFound):
        store.read("m", 1)


def test_half_written_files_are_never_versions(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, KEY, retention=5)
    store.write("m", {"w": 1}, {})
    (tmp_path / "m" / ".incoming-abc").write_bytes(MAGIC + b"\0" * 10)
    assert store.versions("m") == [1]
    assert store.write("m", {"w": 2}, {}).version == 2


def test_a_tampered_snapshot_is_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path, KEY, retention=5)
    store.write("m", {"w": 1.0}, {})
    path = tmp_path / "m" / "v00000001.snapshot"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SnapshotRefused, match="signature does not match"):
        store.read("m", 1)
    path.write_bytes(bytes(data[:-40]))  # truncated
    with pytest.raises(SnapshotRefused):
        store.read("m", 1)


def test_a_snapshot_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    SnapshotStore(tmp_path, b"other-key", retention=5).write("m", {"w": 1.0}, {})
    with pytest.raises(SnapshotRefused, match="another key"):
        SnapshotStore(tmp_path, KEY, retention=5).read("m", 1)


def test_a_reduce_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = {"estimator": Payload(str(marker))}
    # Even correctly signed (a leaked key), the unpickler refuses the class before calling it.
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "v00000001.snapshot").write_bytes(seal(KEY, "m", 1, evil, {}))
    with pytest.raises(SnapshotRefused, match=r"forbidden class (posix|os)\.system"):
        SnapshotStore(tmp_path, KEY, retention=5).read("m", 1)
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj",
    [
        pickle.loads,  # a function from a forbidden module
        eval,
        __import__("subprocess").Popen,
        __import__("numpy").ctypeslib.load_library,
    ],
)
def test_forbidden_callables_are_refused_by_name(obj: Any) -> None:
    with pytest.raises(SnapshotRefused, match="forbidden class"):
        restricted_loads(pickle.dumps(obj))


def test_river_models_pass_the_restricted_unpickler() -> None:
    model = linear_model.LogisticRegression()
    model.learn_one({"x": 1.0}, True)
    clone = restricted_loads(pickle.dumps(model))
    assert clone.predict_proba_one({"x": 1.0}) == model.predict_proba_one({"x": 1.0})
