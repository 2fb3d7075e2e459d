"""The label join: predictions wait for their label, labels that overtook their event wait
for it, and a second label for an event is recognised; all within the same bounds.

``events`` and ``labels`` are two topics, so a label can come before its event; both sides
wait in a :class:`~streams.learning.ttl.TTLMap` bounded by count and age, and nothing leaves
either silently (it is counted).

Examples
--------
>>> from streams.learning.counters import Counters
>>> from streams.learning.events import NO_LABEL, Label
>>> from streams.learning.pending import Pending
>>> join, counters = LabelJoin(max_size=10, ttl_seconds=60), Counters()
>>> join.park("e1", Pending({"x": 1}, True, None, at=0.0, seq=1), now=0.0, counters=counters)
>>> join.match(Label("e1", "m", False), now=5.0, seq=3, counters=counters).y_pred
True
>>> join.match(Label("e1", "m", False), now=6.0, seq=3, counters=counters) is None
True
>>> counters.n_labels_duplicate, join.lag_seconds.get()
(1, 5.0)
"""

from __future__ import annotations

from typing import Any

from river import stats

from streams.learning.counters import Counters
from streams.learning.dedupe import DedupeWindow
from streams.learning.events import NO_LABEL, Label
from streams.learning.pending import Pending, PendingStore
from streams.learning.ttl import TTLMap


class LabelJoin:
    """Joins predictions made without a label to the label that comes later (or earlier).

    Parameters
    ----------
    max_size
        Most predictions, and most early labels, kept waiting.
    ttl_seconds
        Longest wait of either.
    dedupe_size, dedupe_seconds
        How many labelled event ids are remembered, and how long, to recognise a second
        label (the bounds of the dedupe window).
    """

    def __init__(
        self, max_size: int, ttl_seconds: float, dedupe_size: int = 100_000,
        dedupe_seconds: float = 86_400.0,
    ) -> None:  # fmt: skip
        self.ttl_seconds = ttl_seconds
        self.pending = PendingStore(max_size, ttl_seconds)
        self.early: TTLMap[Any] = TTLMap(max_size, ttl_seconds)
        self.labelled = DedupeWindow(dedupe_size, dedupe_seconds)
        #: Time, and events, between a prediction and its label.
        self.lag_seconds = stats.Mean()
        self.lag_events = stats.Mean()

    def park(self, event_id: str, pending: Pending, now: float, counters: Counters) -> None:
        """A prediction made without a label waits for it."""
        counters.n_pending_expired += self.pending.add(event_id, pending, now)

    def match(self, label: Label, now: float, seq: int, counters: Counters) -> Pending | None:
        """The prediction ``label`` completes (taken out of the store), or ``None`` when it
        is a second label for its event, or its event has not come yet (it then waits)."""
        counters.n_pending_expired += self.pending.expire(now)
        pending = self.pending.pop(label.event_id)
        if pending is None:
            if self.labelled.seen(label.event_id, now):
                counters.n_labels_duplicate += 1
            else:
                counters.n_labels_unmatched += self.early.put(label.event_id, label.label, now)
            return None
        self.labelled.seen(label.event_id, now)
        self.lag_seconds.update(max(0.0, now - pending.at))
        self.lag_events.update(seq - pending.seq)
        return pending

    def early_label(self, event_id: str, now: float, counters: Counters) -> Any:
        """The label that came before event ``event_id``, or :data:`NO_LABEL`."""
        if not self.early:
            return NO_LABEL
        held = self.early.pop_with_time(event_id)
        if held is None or now - held[1] > self.ttl_seconds:
            return NO_LABEL
        self.labelled.seen(event_id, now)
        counters.n_labels_early += 1
        # The label came first: no time and no events between prediction and label.
        self.lag_seconds.update(0.0)
        self.lag_events.update(0)
        return held[0]

    def lag(self) -> dict[str, float | int | None]:
        """Mean time and events between a prediction and its label (the API's ``label_lag``)."""
        return {
            "mean_seconds": self.lag_seconds.get(),
            "mean_events": self.lag_events.get(),
            "n": int(self.lag_seconds.n),
        }
