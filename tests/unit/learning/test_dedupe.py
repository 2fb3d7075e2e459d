from __future__ import annotations

import copy

from streams.learning.dedupe import DedupeWindow


def test_ids_older_than_the_window_are_forgotten() -> None:
    window = DedupeWindow(max_size=1000, max_age_seconds=10)
    assert not window.seen("a", now=0)
    assert window.seen("a", now=9)
    assert not window.seen("b", now=15)  # "a" (seen at 0) has aged out
    assert len(window) == 1
    assert not window.seen("a", now=16)


def test_the_window_never_holds_more_than_its_size() -> None:
    window = DedupeWindow(max_size=100, max_age_seconds=1e9)
    for i in range(10_000):
        window.seen(str(i), now=float(i))
    assert len(window) == 100
    assert window.seen("9999", now=10_000)
    assert not window.seen("0", now=10_000)


def test_a_deep_copy_is_a_window_of_its_own() -> None:
    # The journal's checkpoint: what either side sees next must not reach the other.
    window = DedupeWindow(max_size=3, max_age_seconds=60)
    for i in range(3):
        window.seen(f"e{i}", now=float(i))
    copied = copy.deepcopy(window)
    assert window.seen("new", now=3.0) is False  # e0 leaves the original, not the copy
    assert copied.seen("e0", now=3.0) is True and copied.seen("new", now=3.0) is False
    assert window.seen("e0", now=4.0) is False and window.seen("new", now=4.0) is True
    assert len(window) == len(copied) == 3
