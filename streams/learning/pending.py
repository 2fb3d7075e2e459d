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

from dataclasses import dataclass
from typing import Any

from streams.learning.ttl import TTLMap


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
        self._items: TTLMap[Pending] = TTLMap(max_size, ttl_seconds)

    def add(self, event_id: str, pending: Pending, now: float) -> int:
        """Park a prediction; returns how many older ones were dropped to make room."""
        return self._items.put(event_id, pending, now)

    def pop(self, event_id: str) -> Pending | None:
        """The pending prediction for ``event_id`` (removed), or ``None``.

        Call :meth:`expire` first so that a prediction past its TTL is counted as expired.
        """
        return self._items.pop(event_id)

    def expire(self, now: float) -> int:
        """Drop predictions older than the TTL; returns how many."""
        return self._items.expire(now)

    def __len__(self) -> int:
        return len(self._items)
