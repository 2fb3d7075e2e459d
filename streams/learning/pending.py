"""Predictions waiting for their label: bounded by a size cap and a time to live.

Examples
--------
>>> store = PendingStore(max_size=2, ttl_seconds=10)
>>> store.add("a", Pending({"x": 1}, True, None, at=0.0, seq=1), now=0.0)
0
>>> store.add("b", Pending({"x": 2}, False, None, at=1.0, seq=2), now=1.0)
0
>>> store.add("c", Pending({"x": 3}, False, None, at=2.0, seq=3), now=2.0)  # "a" is evicted
1
>>> store.pop("a") is None, store.pop("b").seq
(True, 2)
>>> store.expire(now=30.0), len(store)
(1, 0)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Pending:
    """A prediction made without a label: the features as they were, and what was predicted."""

    x: dict[str, Any]
    y_pred: Any
    proba: dict[Any, float] | None
    at: float
    seq: int
    #: The challengers' predictions, made at the same time as the champion's.
    challengers: list[tuple[Any, Any]] | None = None


class PendingStore:
    """Pending predictions by ``event_id``, oldest first.

    ``add`` and ``expire`` return how many entries left without a label (evicted by the size
    cap or past their TTL), so the caller can count them: nothing leaves silently.
    """

    def __init__(self, max_size: int, ttl_seconds: float) -> None:
        self.max_size = max_size
        self.ttl_seconds = ttl_seconds
        self._items: OrderedDict[str, Pending] = OrderedDict()

    def add(self, event_id: str, pending: Pending, now: float) -> int:
        """Park a prediction; returns how many older ones were dropped to make room."""
        dropped = self.expire(now)
        self._items[event_id] = pending
        self._items.move_to_end(event_id)
        while len(self._items) > self.max_size:
            self._items.popitem(last=False)
            dropped += 1
        return dropped

    def pop(self, event_id: str) -> Pending | None:
        """The pending prediction for ``event_id`` (removed), or ``None``.

        Call :meth:`expire` first so that a prediction past its TTL is counted as expired.
        """
        return self._items.pop(event_id, None)

    def expire(self, now: float) -> int:
        """Drop predictions older than the TTL; returns how many."""
        horizon = now - self.ttl_seconds
        items = self._items
        n = 0
        while items:
            oldest = next(iter(items.values()))
            if oldest.at >= horizon:
                break
            items.popitem(last=False)
            n += 1
        return n

    def __len__(self) -> int:
        return len(self._items)
