"""Time to snapshot and restore a model of about 10 MB, through the signed store.

    .venv/bin/python bench/snapshot_restore.py

Prints the snapshot size, write time (pickle + HMAC + fsync + rename) and restore time
(read + HMAC check + restricted unpickling + installing the state), median of 5 runs.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from pathlib import Path

import orjson

from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.learning.spec import ModelSpec

TARGET_BYTES = 10_000_000


def main() -> None:
    from river import datasets

    spec = ModelSpec(
        name="big", task="binary", pipeline="forest.ARFClassifier(seed=1, n_models=10)",
        preprocess="none", metrics=("Accuracy",),
    )  # fmt: skip
    registry = ModelRegistry({"big": spec}, Limits(), max_event_bytes=10**6)
    folder = Path(tempfile.mkdtemp())
    store = SnapshotStore(folder, b"bench-key", retention=2)
    rows = datasets.synth.Agrawal(seed=1)
    learned = 0
    size = 0
    while size < TARGET_BYTES:
        for i, (x, y) in enumerate(itertools.islice(rows, 2_000), start=learned):
            raw = orjson.dumps({"event_id": str(i), "model": "big", "features": x, "label": y})
            registry.handle_events(raw, topic="e", partition=0, offset=i, now=0.0)
        learned += 2_000
        model = registry.get("big")
        size = store.write("big", model.snapshot_state({}), {}).bytes
    writes, restores = [], []
    for _ in range(5):
        started = time.perf_counter()
        store.write("big", model.snapshot_state({}), {})
        writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        state, _ = store.read("big")
        registry.reset_model("big").restore_state(state)
        restores.append(time.perf_counter() - started)
    print(f"model: ARFClassifier(n_models=10) after {learned} events")
    print(f"snapshot size: {size / 1e6:.1f} MB")
    print(f"write   (median of 5): {statistics.median(writes) * 1000:.0f} ms")
    print(f"restore (median of 5): {statistics.median(restores) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
