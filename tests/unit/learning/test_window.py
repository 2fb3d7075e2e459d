"""A tuning job's window holds what the node learned, in the order it learned it: checked
against a live :class:`OnlineModel` fed the same events and labels, whatever they are."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.learning.errors import InvalidEvent
from streams.learning.events import NO_LABEL, Event, Label
from streams.learning.model import Limits, OnlineModel
from streams.learning.spec import ModelSpec
from streams.learning.window import HistoryWindow

SPEC = ModelSpec(
    name="m",
    task="binary",
    preprocess="none",
    max_features=3,
    pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()",
)
#: Small bounds, so that evictions and expiries happen within a few steps.
LIMITS = Limits(dedupe_size=8, dedupe_seconds=50.0, pending_size=4, pending_seconds=20.0)

ids = st.sampled_from([f"e{i}" for i in range(12)])
labels = st.one_of(st.booleans(), st.sampled_from([0, 1, 2, "yes", 1.5, None]))
values = st.one_of(st.floats(allow_nan=True), st.integers(-5, 5), st.text(max_size=3),
                   st.none(), st.booleans())  # fmt: skip
features = st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), values, max_size=4)
events = st.builds(lambda i, x, y, inline: ("event", i, x, y if inline else NO_LABEL),
                   ids, features, labels, st.booleans())  # fmt: skip
label_items = st.builds(lambda i, y: ("label", i, None, y), ids, labels)
steps = st.lists(st.tuples(st.one_of(events, label_items), st.floats(0, 5)), max_size=60)


def learned_by_the_node(items: list[tuple[tuple[str, str, Any, Any], float]]) -> list[Any]:
    """What a live model learns from ``items``, in order: (event id, features, label)."""
    model, learned, now = OnlineModel(SPEC, LIMITS), [], 0.0
    parked: dict[str, dict[str, Any]] = {}  # the features of the events waiting for a label
    early: dict[str, Any] = {}  # the labels that came before their event
    for (kind, event_id, x, y), gap in items:
        now += gap
        try:
            if kind == "event":
                event = Event(event_id, "m", dict(x), y)
                step = model.process(event, now)
                if step.learned:
                    label = early[event_id] if y is NO_LABEL else y
                    learned.append((event_id, event.features, label))
                elif step.record is not None:
                    parked[event_id] = event.features
            elif model.process_label(Label(event_id, "m", y), now).learned:
                learned.append((event_id, parked[event_id], y))
            else:
                early[event_id] = y
        except InvalidEvent:  # dead-lettered by the node
            continue
    return learned


@settings(max_examples=300, deadline=None)
@given(steps, st.integers(1, 10))
def test_the_window_is_the_last_events_the_node_learned(
    items: list[tuple[tuple[str, str, Any, Any], float]], size: int
) -> None:
    window, now = HistoryWindow(SPEC, size, LIMITS), 0.0
    for (kind, event_id, x, y), gap in items:
        now += gap
        if kind == "event":
            window.event(Event(event_id, "m", dict(x), y), now)
        else:
            window.label(Label(event_id, "m", y), now)
    expected = learned_by_the_node(items)
    assert [(i, y) for i, _, y in window.events] == [(i, y) for i, _, y in expected[-size:]]
    assert [x for _, x, _ in window.events] == [x for _, x, _ in expected[-size:]]
    assert window.n_labelled == len(expected)
    assert len(window.events) <= size
