"""A model's history as a tuning job sees it: its last labelled events, joined to their labels
the way the node joins them.

The node learns an event when its label is known: inline, or from the ``labels`` topic
before or after the event. :class:`HistoryWindow` is fed the records of the model's partitions
of ``events`` and ``labels`` in the order they were written, and keeps, in the order the
node would have learned them, the last ``size`` labelled events with the features as the
model took them. It uses the node's parts: the same feature guard (names past
``max_features`` left out, values the pipeline cannot take refused), the same dedupe window
(an event id seen before is skipped), the same label join (bounded by the same limits), and
the same label check. What the node dead-letters is left out here too, and counted.

Examples
--------
>>> from streams.learning.events import Event, Label
>>> from streams.learning.model import Limits
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="binary", preprocess="none",
...                  pipeline="linear_model.LogisticRegression()")
>>> window = HistoryWindow(spec, size=3, limits=Limits())
>>> window.event(Event("a", "m", {"x": 1.0}, True), now=0.0)
>>> window.event(Event("b", "m", {"x": 2.0}), now=1.0)       # waits for its label
>>> window.label(Label("b", "m", False), now=2.0)
>>> window.event(Event("a", "m", {"x": 1.0}, True), now=3.0)  # a duplicate: skipped
>>> window.event(Event("c", "m", {"x": "?"}, True), now=4.0)  # refused, as by the node
>>> [event_id for event_id, _, _ in window.events], window.n_skipped
(['a', 'b'], 2)
"""

from __future__ import annotations

from collections import deque
from typing import Any

from streams.learning.build import check_label
from streams.learning.counters import Counters
from streams.learning.dedupe import DedupeWindow
from streams.learning.errors import InvalidEvent
from streams.learning.events import NO_LABEL, Event, Label
from streams.learning.guard import FeatureGuard, probe
from streams.learning.labels import LabelJoin
from streams.learning.model import Limits
from streams.learning.pending import Pending
from streams.learning.spec import ModelSpec

#: One labelled event of a window: its id, its features as the model took them, its label.
Labelled = tuple[str, dict[str, Any], Any]


class HistoryWindow:
    """The last ``size`` labelled events of model ``spec.name``, in the order learned."""

    def __init__(self, spec: ModelSpec, size: int, limits: Limits) -> None:
        self.name = spec.name
        self.task = spec.task
        self.guard = FeatureGuard(probe(spec), spec.max_features)
        self.dedupe = DedupeWindow(limits.dedupe_size, limits.dedupe_seconds)
        self.join = LabelJoin(limits.pending_size, limits.pending_seconds,
                              limits.dedupe_size, limits.dedupe_seconds)  # fmt: skip
        self.counters = Counters()
        self.events: deque[Labelled] = deque(maxlen=size)
        #: Labelled events seen in all (the window keeps the last ``size``).
        self.n_labelled = 0
        #: Events and labels of this model the node would have dead-lettered or skipped.
        self.n_skipped = 0

    def event(self, event: Event, now: float) -> None:
        """An event of this model, from the ``events`` topic."""
        label = event.label
        if label is not NO_LABEL and check_label(label, self.task, self.name) is not None:
            self.n_skipped += 1
            return
        try:
            x, _ = self.guard.admit(event.features)
        except InvalidEvent:
            self.n_skipped += 1
            return
        self.counters.n_events += 1
        if self.dedupe.seen(event.event_id, now):
            self.n_skipped += 1
            return
        if label is NO_LABEL:
            label = self.join.early_label(event.event_id, now, self.counters)
        if label is NO_LABEL:
            pending = Pending(x, None, None, now, self.counters.n_events)
            self.join.park(event.event_id, pending, now, self.counters)
        else:
            self._keep(event.event_id, x, label)

    def label(self, label: Label, now: float) -> None:
        """A label of this model, from the ``labels`` topic."""
        if check_label(label.label, self.task, self.name) is not None:
            self.n_skipped += 1
            return
        pending = self.join.match(label, now, self.counters.n_events, self.counters)
        if pending is not None:
            self._keep(label.event_id, pending.x, label.label)

    def _keep(self, event_id: str, x: dict[str, Any], y: Any) -> None:
        self.events.append((event_id, x, y))
        self.n_labelled += 1
