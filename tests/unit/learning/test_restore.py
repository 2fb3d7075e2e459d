"""The snapshot restored is the one that has come furthest; ties go to the newer, then local."""

from __future__ import annotations

from streams.learning.restore import SnapshotCandidate, choose_snapshot

T0, T1 = "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00"


def local(version: int, offsets: dict[str, int], created_at: str = T0) -> SnapshotCandidate:
    return SnapshotCandidate(offsets, created_at, version)


def topic(offsets: dict[str, int], created_at: str = T0, version: int = 9) -> SnapshotCandidate:
    return SnapshotCandidate(offsets, created_at, version, published=True)


def order(candidates: list[SnapshotCandidate]) -> list[tuple[object, bool]]:
    return [(c.version, c.published) for c in choose_snapshot(candidates)]


def test_the_largest_sum_of_offsets_comes_first() -> None:
    candidates = [local(1, {"ev:0": 10, "lb:0": 0}), local(2, {"ev:0": 4, "lb:0": 3}),
                  topic({"ev:0": 30, "lb:0": 0}, created_at=T0)]  # fmt: skip
    assert order(candidates) == [(9, True), (1, False), (2, False)]


def test_at_equal_offsets_the_later_one_wins_wherever_it_comes_from() -> None:
    same = {"ev:0": 10}
    assert order([local(3, same, T0), topic(same, T1)]) == [(9, True), (3, False)]
    assert order([local(3, same, T1), topic(same, T0)]) == [(3, False), (9, True)]


def test_at_equal_offsets_and_time_local_comes_first_newest_version_first() -> None:
    same = {"ev:0": 10}
    assert order([topic(same, version=99), local(1, same), local(2, same)]) == [
        (2, False), (1, False), (99, True)]  # fmt: skip


def test_a_topic_snapshot_of_an_unknown_version_still_ranks() -> None:
    unknown = SnapshotCandidate({"ev:0": 1}, "", None, published=True)
    assert choose_snapshot([unknown]) == [unknown]
    assert choose_snapshot([]) == []
    assert unknown.progress == 1
