"""A bounded window of recently seen event ids.

Examples
--------
>>> window = DedupeWindow(max_size=2, max_age_seconds=60)
>>> window.seen("a", now=0.0), window.seen("a", now=1.0)
(False, True)
>>> window.seen("b", now=2.0), window.seen("c", now=3.0), window.seen("a", now=4.0)
(False, False, False)
>>> len(window)
2
"""

from __future__ import annotations

from typing import Any

from streams.learning.ttl import TTLMap


class DedupeWindow:
    """Remembers at most ``max_size`` event ids, none older than ``max_age_seconds``.

    An id seen again inside the window is a duplicate; once it has left the window (by count
    or by age) it is new again, which is what bounds memory.
    """

    def __init__(self, max_size: int, max_age_seconds: float) -> None:
        self._seen: TTLMap[None] = TTLMap(max_size, max_age_seconds)

    def seen(self, event_id: str, now: float) -> bool:
        """Whether ``event_id`` is a duplicate; records it if not."""
        seen = self._seen
        seen.expire(now)
        if event_id in seen:
            return True
        seen.append(event_id, None, now)
        return False

    def __deepcopy__(self, memo: dict[int, Any]) -> DedupeWindow:
        # The journal deep-copies a model's state every 20,000 steps, and this window of up
        # to 100,000 ids was most of it (39 of 46 ms on the event loop, blocking requests):
        # ids and their times never change in place, so a copy of the map is a deep copy.
        window = DedupeWindow.__new__(DedupeWindow)
        window._seen = self._seen.copy()
        memo[id(self)] = window
        return window

    def __len__(self) -> int:
        return len(self._seen)
