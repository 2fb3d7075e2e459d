"""A map that forgets: at most ``max_size`` entries, none older than ``max_age_seconds``.

The one bounded structure behind the dedupe window, the pending predictions and the labels
waiting for their event: oldest first, each entry stamped with the time it came.

Examples
--------
>>> ttl = TTLMap(max_size=2, max_age_seconds=10)
>>> ttl.put("a", 1, now=0.0), ttl.put("b", 2, now=1.0), ttl.put("c", 3, now=2.0)
(0, 0, 1)
>>> "a" in ttl, ttl.pop("b"), ttl.expire(now=20.0), len(ttl)
(False, 2, 1, 0)
>>> ttl.append("d", 4, now=21.0), ttl.append("e", 5, now=22.0), ttl.append("f", 6, now=23.0)
(0, 0, 1)
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLMap(Generic[V]):
    """Entries by key, oldest first, bounded by count and by age."""

    def __init__(self, max_size: int, max_age_seconds: float) -> None:
        self.max_size = max_size
        self.max_age_seconds = max_age_seconds
        self._items: OrderedDict[str, tuple[V, float]] = OrderedDict()

    def put(self, key: str, value: V, now: float) -> int:
        """Add (or renew) an entry; returns how many older ones left to make room or because
        they were past their age."""
        gone = self.expire(now)
        items = self._items
        renewed = key in items
        items[key] = (value, now)
        if renewed:
            items.move_to_end(key)
        while len(items) > self.max_size:
            items.popitem(last=False)
            gone += 1
        return gone

    def append(self, key: str, value: V, now: float) -> int:
        """Add an entry for a key the map does not hold, right after :meth:`expire` (what
        :meth:`put` does, for the newest entry: nothing to expire or to move); returns how
        many older ones left to make room."""
        items = self._items
        items[key] = (value, now)
        if len(items) <= self.max_size:
            return 0
        gone = 0
        while len(items) > self.max_size:
            items.popitem(last=False)
            gone += 1
        return gone

    def pop(self, key: str) -> V | None:
        """The entry's value (removed), or ``None``."""
        entry = self._items.pop(key, None)
        return None if entry is None else entry[0]

    def pop_with_time(self, key: str) -> tuple[V, float] | None:
        """The entry's value and the time it came (removed), or ``None``."""
        return self._items.pop(key, None)

    def expire(self, now: float) -> int:
        """Drop the entries older than ``max_age_seconds``; returns how many."""
        horizon = now - self.max_age_seconds
        items = self._items
        n = 0
        while items and next(iter(items.values()))[1] < horizon:
            items.popitem(last=False)
            n += 1
        return n

    def copy(self) -> TTLMap[V]:
        """A map of its own with the same entries, the values shared: for values nothing
        changes in place (a dedupe window's ``None``), what a deep copy gives, without the
        deep copy's walk over every entry."""
        other: TTLMap[V] = TTLMap(self.max_size, self.max_age_seconds)
        other._items = self._items.copy()
        return other

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)
