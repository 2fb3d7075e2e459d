"""Events on another partition than their model's, from any producer's partitioner: moved to
their model's partition, learned there once, and never sent round."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.learning.test_registry import event, registry


def test_misplaced_events_are_moved_not_learned_or_dead_lettered() -> None:
    reg, a, b = registry()
    pa, pb = reg.partition_of(a), reg.partition_of(b)
    raw = orjson.dumps([event(a, 1), event(b, 2), event("ghost", 3), event(a, 4)])
    out = reg.handle_events(raw, topic="ev", partition=pb, offset=7, now=0.0)
    assert reg.get(b).n_learned == 1 and reg.get(a).n_learned == 0
    assert [d.error for d in out.dead_letters] == ["unknown model 'ghost'"]
    [moved] = out.reroutes
    assert moved.partition == pa and moved.key == a.encode() and moved.source == f"ev:{pb}:7"
    assert orjson.loads(moved.value) == [event(a, 1), event(a, 4)]
    assert reg.n_rerouted == 2 and reg.get(a).counters.n_dead_letters == 0
    assert reg.positions == {f"ev:{pb}": 8}


def test_a_message_all_of_one_misplaced_model_is_moved_unchanged() -> None:
    reg, a, b = registry()
    for raw in (orjson.dumps(event(a, 1)), b' [ {"event_id":"x","model":"%s","features":{}} ]'
                % a.encode()):  # fmt: skip
        out = reg.handle_events(raw, topic="ev", partition=reg.partition_of(b), offset=0,
                                now=0.0)  # fmt: skip
        assert [(r.partition, r.value) for r in out.reroutes] == [(reg.partition_of(a), raw)]


def test_a_moved_copy_is_learned_once_and_counted_by_its_model() -> None:
    reg, a, b = registry()
    raw = orjson.dumps([event(a, 1), event(a, 2)])
    [moved] = reg.handle_events(raw, topic="ev", partition=reg.partition_of(b), offset=0,
                                now=0.0).reroutes  # fmt: skip
    pa = reg.partition_of(a)
    # The copy arrives, and arrives again (its original was redelivered after a crash).
    for offset in (3, 4):
        out = reg.handle_events(moved.value, topic="ev", partition=pa, offset=offset, now=0.0,
                                rerouted=True)  # fmt: skip
        assert not out.reroutes and not out.dead_letters
    model = reg.get(a)
    assert model.n_learned == 2
    assert model.counters.n_duplicates == 2 and model.counters.n_rerouted == 4


def test_a_copy_misplaced_again_is_dead_lettered_not_sent_round() -> None:
    reg, a, b = registry()
    raw = orjson.dumps(event(a, 1))
    out = reg.handle_events(raw, topic="ev", partition=reg.partition_of(b), offset=0, now=0.0,
                            rerouted=True)  # fmt: skip
    assert not out.reroutes
    assert "the nodes of the group disagree on STREAMLEARN_TOPIC_PARTITIONS" in (
        out.dead_letters[0].error
    )
    assert reg.get(a).counters.n_dead_letters == 1


def test_labels_are_moved_as_events_are() -> None:
    reg, a, b = registry()
    pa, pb = reg.partition_of(a), reg.partition_of(b)
    reg.handle_events(orjson.dumps(event(a, 1, label=None)), topic="ev", partition=pa, offset=0,
                      now=0.0)  # fmt: skip
    label = orjson.dumps({"event_id": f"{a}-1", "model": a, "label": 2.0})
    [moved] = reg.handle_labels(label, topic="lb", partition=pb, offset=0, now=1.0).reroutes
    assert reg.get(a).n_learned == 0
    reg.handle_labels(moved.value, topic="lb", partition=pa, offset=0, now=1.0, rerouted=True)
    assert reg.get(a).n_learned == 1 and reg.get(a).counters.n_rerouted == 1


@settings(max_examples=60, deadline=None)
@given(
    placement=st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=1, max_size=30),
    arrival=st.integers(0, 3),
)
def test_whatever_the_partitioner_each_event_is_learned_once_in_its_order(
    placement: list[tuple[bool, int]], arrival: int
) -> None:
    """Events of two models in one message on any partition: after the moves, each model has
    learned exactly its events, in the order they were sent."""
    reg, a, b = registry()
    sent = [event(a if first else b, i) for i, (first, _) in enumerate(placement)]
    out = reg.handle_events(orjson.dumps(sent), topic="ev", partition=arrival, offset=0,
                            now=0.0)  # fmt: skip
    predicted = list(out.predictions)
    for offset, moved in enumerate(out.reroutes, start=1):
        assert moved.partition != arrival
        predicted += reg.handle_events(
            moved.value,
            topic="ev",
            partition=moved.partition,
            offset=offset,
            now=0.0,
            rerouted=True,
        ).predictions
    for name in (a, b):
        expected = [e["event_id"] for e in sent if e["model"] == name]
        assert reg.get(name).n_learned == len(expected)
        assert [p.event_id for p in predicted if p.model == name] == expected
