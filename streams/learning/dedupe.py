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

from collections import OrderedDict


class DedupeWindow:
    """Remembers at most ``max_size`` event ids, none older than ``max_age_seconds``.

    An id seen again inside the window is a duplicate; once it has left the window (by count
    or by age) it is new again, which is what bounds memory.
    """

    def __init__(self, max_size: int, max_age_seconds: float) -> None:
        self.max_size = max_size
        self.max_age_seconds = max_age_seconds
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen(self, event_id: str, now: float) -> bool:
        """Whether ``event_id`` is a duplicate; records it if not."""
        self._expire(now)
        if event_id in self._seen:
            return True
        self._seen[event_id] = now
        if len(self._seen) > self.max_size:
            self._seen.popitem(last=False)
        return False

    def _expire(self, now: float) -> None:
        horizon = now - self.max_age_seconds
        seen = self._seen
        while seen:
            oldest = next(iter(seen.values()))
            if oldest >= horizon:
                break
            seen.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seen)
