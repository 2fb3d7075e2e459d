"""Which snapshot of a model to restore: the one that has come furthest.

A node restoring a model has its own versions of it (``<state dir>/snapshots/<model>/``) and,
perhaps, the latest one on the compacted ``snapshots`` topic, published by whichever node held
the model before. :func:`choose_snapshot` orders them, best first; the caller tries each in
turn and takes the first that passes its checks (signature, allowed classes), and starts a
fresh model when none does.

Examples
--------
>>> local = [SnapshotCandidate({"events:0": 10}, "2026-01-01T00:00:01+00:00", version=1),
...          SnapshotCandidate({"events:0": 30}, "2026-01-01T00:00:02+00:00", version=2)]
>>> published = SnapshotCandidate({"events:0": 30}, "2026-01-01T00:00:03+00:00", version=7,
...                               published=True)
>>> [(c.version, c.published) for c in choose_snapshot([*local, published])]
[(7, True), (2, False), (1, False)]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SnapshotCandidate:
    """A snapshot that could be restored, described by its header alone (nothing unpickled).

    ``version`` is the number the writing node gave it; ``published``: read from the
    snapshots topic rather than this node's store (its version is then another node's).
    """

    offsets: Mapping[str, int]
    created_at: str
    version: Any
    published: bool = False

    @property
    def progress(self) -> int:
        """How far the snapshot has come: the sum of the offsets it resumes at."""
        return sum(self.offsets.values())


def choose_snapshot(candidates: Iterable[SnapshotCandidate]) -> list[SnapshotCandidate]:
    """``candidates`` in the order to try them: the largest sum of offsets first; at equal
    offsets the later ``created_at`` (a rollback or a promotion, taken since); then a local
    copy before the topic's, and a higher local version before a lower one.

    ``created_at`` is compared as the ISO 8601 text the store writes (UTC, one format).

    Examples
    --------
    >>> same = {"events:0": 5, "labels:0": 2}
    >>> a = SnapshotCandidate(same, "2026-01-01T00:00:00+00:00", version=3)
    >>> b = SnapshotCandidate(same, "2026-01-01T00:00:00+00:00", version=4, published=True)
    >>> c = SnapshotCandidate(same, "2026-01-01T00:00:00+00:00", version=2)
    >>> [(s.version, s.published) for s in choose_snapshot([a, b, c])]
    [(3, False), (2, False), (4, True)]
    >>> choose_snapshot([])
    []
    """
    return sorted(candidates, key=_rank, reverse=True)


def _rank(candidate: SnapshotCandidate) -> tuple[int, str, int]:
    # A local version is at least 1; the topic's copy ranks below every local one.
    rank = -1 if candidate.published else int(candidate.version)
    return candidate.progress, candidate.created_at, rank
