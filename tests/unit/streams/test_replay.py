"""Replaying a source several times over: the same rows, new event ids in every pass."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from streams.learning.errors import SourceError
from streams.replay import iter_source, numbered_rows


def test_each_pass_replays_the_rows_under_new_event_ids() -> None:
    rows = list(numbered_rows("river:TrumpApproval", "demo", limit=3, passes=3))
    ids = [event_id for event_id, _, _ in rows]
    assert ids == ["demo-0", "demo-1", "demo-2", "demo.1-0", "demo.1-1", "demo.1-2",
                   "demo.2-0", "demo.2-1", "demo.2-2"]  # fmt: skip
    once = list(iter_source("river:TrumpApproval", limit=3))
    assert [(x, y) for _, x, y in rows] == once * 3


def test_one_pass_keeps_the_documented_ids() -> None:
    ids = [event_id for event_id, _, _ in numbered_rows("river:Phishing", "p")]
    assert ids == [f"p-{i}" for i in range(1250)]


def test_no_pass_count_keeps_going_past_the_end_of_the_dataset() -> None:
    rows = numbered_rows("river:TrumpApproval", "t", passes=None)
    ids = [event_id for event_id, _, _ in itertools.islice(rows, 2500)]
    assert len(set(ids)) == 2500
    assert ids[1000:1003] == ["t-1000", "t.1-0", "t.1-1"]
    assert ids[-1] == "t.2-497"


def test_a_drifting_synthetic_stream_repeats_the_same_events_in_every_pass() -> None:
    source = "river:synth.ConceptDriftStream(seed=42, position=50, width=10)"
    first, second = (
        [(x, y) for _, x, y in numbered_rows(source, "d", limit=100, passes=2)][i : i + 100]
        for i in (0, 100)
    )
    assert first == second


def test_an_empty_source_ends_even_without_a_pass_count(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert list(numbered_rows(str(empty), "e", passes=None)) == []


def test_an_unknown_dataset_fails_before_anything_is_sent() -> None:
    with pytest.raises(SourceError, match="River has no dataset 'Nope'"):
        numbered_rows("river:Nope", "x", passes=None)
