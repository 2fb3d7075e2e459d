"""The registry: which model a message is for, where each partition resumes, what a
partition that moved away leaves behind, and learning in slices."""

from __future__ import annotations

import time

import orjson

from streams.learning.model import Limits
from streams.learning.partitioning import partition_for
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec

TOPICS = ("ev", "lb")


def names_on(partitions: int) -> tuple[str, str]:
    """Two model names on different partitions."""
    first = partition_for("m0", partitions)
    other = next(i for i in range(1, 100) if partition_for(f"m{i}", partitions) != first)
    return "m0", f"m{other}"


def registry(partitions: int = 4) -> tuple[ModelRegistry, str, str]:
    a, b = names_on(partitions)
    specs = {n: ModelSpec(name=n, task="regression", pipeline="linear_model.LinearRegression()")
             for n in (a, b)}  # fmt: skip
    made = ModelRegistry(specs, Limits(), max_event_bytes=1 << 20, input_topics=TOPICS,
                         partitions=partitions)  # fmt: skip
    return made, a, b


def event(model: str, i: int, label: float | None = 1.0) -> dict[str, object]:
    out: dict[str, object] = {"event_id": f"{model}-{i}", "model": model, "features": {"x": i}}
    if label is not None:
        out["label"] = label
    return out


def test_models_are_placed_by_the_kafka_partitioner() -> None:
    reg, a, b = registry()
    assert reg.partition_of(a) == partition_for(a, 4) != reg.partition_of(b)
    assert [m.name for m in reg.models_on(reg.partition_of(a))] == [a]
    assert reg.partition_of("not-declared") == partition_for("not-declared", 4)


def test_a_message_is_learned_by_its_model_and_its_position_kept() -> None:
    reg, a, _ = registry()
    p = reg.partition_of(a)
    out = reg.handle_events(orjson.dumps([event(a, 1), event(a, 2)]), topic="ev", partition=p,
                            offset=41, now=0.0)  # fmt: skip
    assert [r.event_id for r in out.predictions] == [f"{a}-1", f"{a}-2"]
    assert reg.get(a).n_learned == 2
    assert reg.positions == {f"ev:{p}": 42}
    assert reg.offsets_for(reg.get(a)) == {f"ev:{p}": 42, f"lb:{p}": 0}


def test_unknown_models_are_dead_lettered() -> None:
    reg, a, _ = registry()
    raw = orjson.dumps([event(a, 1), event("ghost", 2)])
    out = reg.handle_events(raw, topic="ev", partition=reg.partition_of(a), offset=0, now=0.0)
    assert [d.error for d in out.dead_letters] == ["unknown model 'ghost'"]
    assert reg.get(a).n_learned == 1
    assert reg.n_dead_letters == 1 and reg.get(a).counters.n_dead_letters == 0


def test_messages_a_snapshot_already_holds_are_skipped() -> None:
    reg, a, _ = registry()
    p = reg.partition_of(a)
    reg.get(a).offsets = {f"ev:{p}": 10}  # restored from a snapshot taken at offset 10
    for offset in (8, 9, 10):
        reg.handle_events(orjson.dumps(event(a, offset)), topic="ev", partition=p,
                          offset=offset, now=0.0)  # fmt: skip
    assert reg.get(a).n_learned == 1


def test_releasing_a_partition_forgets_its_models_and_positions() -> None:
    reg, a, b = registry()
    pa, pb = reg.partition_of(a), reg.partition_of(b)
    for name, p in ((a, pa), (b, pb)):
        reg.handle_events(orjson.dumps(event(name, 1)), topic="ev", partition=p, offset=5,
                          now=0.0)  # fmt: skip
    assert reg.release(pa) == [a]
    assert reg.get(a).n_learned == 0 and reg.get(b).n_learned == 1
    assert f"ev:{pa}" not in reg.positions and f"ev:{pb}" in reg.positions


def test_a_large_message_is_learned_in_slices() -> None:
    reg, a, _ = registry()
    raw = orjson.dumps([event(a, i) for i in range(2_000)])
    steps = list(reg.iter_events(raw, topic="ev", partition=reg.partition_of(a), offset=0,
                                 now=0.0, slice_seconds=0.0))  # fmt: skip
    assert steps[:-1] and all(step is None for step in steps[:-1])
    last = steps[-1]
    assert last is not None and len(last.predictions) == 2_000
    assert reg.get(a).n_learned == 2_000


def test_a_message_that_starts_late_in_a_slice_yields_once_then_has_whole_slices() -> None:
    # The caller's slice began long ago: the first check yields, and what follows is a whole
    # slice (an hour here), not the little that was left of the caller's (which once made
    # every element of the message yield).
    reg, a, _ = registry()
    raw = orjson.dumps([event(a, i) for i in range(200)])
    steps = list(reg.iter_events(raw, topic="ev", partition=reg.partition_of(a), offset=0,
                                 now=0.0, slice_seconds=3600.0,
                                 slice_started=time.perf_counter() - 7200))  # fmt: skip
    assert steps[0] is None and all(step is not None for step in steps[1:])
    assert len(steps) == 2 and reg.get(a).n_learned == 200


def test_labels_complete_predictions_parked_by_events() -> None:
    reg, a, _ = registry()
    p = reg.partition_of(a)
    reg.handle_events(orjson.dumps([event(a, 1, label=None), event(a, 2, label=None)]),
                      topic="ev", partition=p, offset=0, now=0.0)  # fmt: skip
    assert reg.get(a).n_pending_labels == 2
    labels = [{"event_id": f"{a}-1", "model": a, "label": 3.0},
              {"event_id": f"{a}-9", "model": a, "label": 3.0}]  # fmt: skip
    reg.handle_labels(orjson.dumps(labels), topic="lb", partition=p, offset=0, now=1.0)
    model = reg.get(a)
    assert model.n_learned == 1 and model.n_pending_labels == 1
    assert model.state()["n_labels_waiting"] == 1  # the label of an event not seen yet
    assert reg.positions[f"lb:{p}"] == 1


def test_the_error_of_a_batch_element_names_its_index_and_of_a_lone_event_not() -> None:
    reg, a, _ = registry()
    p = reg.partition_of(a)
    bad = {**event(a, 1), "label": "not a number"}
    lone = reg.handle_events(orjson.dumps(bad), topic="ev", partition=p, offset=0, now=0.0)
    batch = reg.handle_events(b" " + orjson.dumps([event(a, 2), bad]), topic="ev", partition=p,
                              offset=1, now=0.0)  # fmt: skip
    assert lone.dead_letters[0].error.startswith("label ")
    assert batch.dead_letters[0].error.startswith("[1].label ")
    assert reg.get(a).n_learned == 1
