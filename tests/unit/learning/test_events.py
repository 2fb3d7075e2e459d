from __future__ import annotations

import math

import orjson
import pytest

from streams.learning.errors import InvalidEvent
from streams.learning.events import Event, decode_events, parse_ts


def one(raw: bytes, max_bytes: int = 10_000) -> Event | InvalidEvent:
    (item,) = decode_events(raw, max_bytes)
    return item


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b'"text"', None, "event must be a JSON object, got a string"),
        (b'{"model": "m", "features": {}}', "event_id", "got nothing (the field is missing)"),
        (b'{"event_id": 7, "model": "m", "features": {}}', "event_id", "got a number"),
        (orjson.dumps({"event_id": "x" * 129, "model": "m", "features": {}}), "event_id", "129"),
        (b'{"event_id": "e", "features": {}}', "model", "model must be a non-empty string"),
        (b'{"event_id": "e", "model": "m"}', "features", "features must be an object"),
        (b'{"event_id": "e", "model": "m", "features": {"a": [1]}}', "features.a", "got an array"),
        (b'{"event_id": "e", "model": "m", "features": {}, "label": [1]}', "label", "label must"),
        (b'{"event_id": "e", "model": "m", "features": {}, "ts": true}', "ts", "RFC 3339"),
        (b'{"event_id": "e", "model": "m", "features": {}, "ts": "2026-01-01T00:00:00"}', "ts",
         "time zone"),
        (b'{"event_id": "e", "model": "m", "features": {}, "labels": 1}', "labels",
         "unknown field"),
    ],
)  # fmt: skip
def test_each_malformed_event_names_its_field(raw: bytes, field: str | None, message: str) -> None:
    item = one(raw)
    assert isinstance(item, InvalidEvent)
    assert item.field == field
    assert message in str(item)


def test_oversized_message_is_refused_before_parsing() -> None:
    item = one(b'{"event_id": "e"}' + b" " * 100, max_bytes=50)
    assert isinstance(item, InvalidEvent)
    assert "over the limit of 50 bytes" in str(item)


def test_a_batch_validates_each_element_on_its_own() -> None:
    raw = orjson.dumps(
        [
            {"event_id": "a", "model": "m", "features": {"x": 1}, "label": True},
            {"event_id": "", "model": "m", "features": {}},
            {"event_id": "c", "model": "m", "features": {"x": None}},
        ]
    )
    a, b, c = decode_events(raw, 10_000)
    assert isinstance(a, Event) and a.label is True
    assert isinstance(b, InvalidEvent) and b.field == "[1].event_id" and b.model is None
    assert isinstance(c, Event) and not c.has_label and c.n_missing == 1
    assert decode_events(b"[]", 100)[0].args[0].startswith("message is an empty array")  # type: ignore[union-attr]


def test_errors_after_the_model_field_name_the_model() -> None:
    item = one(b'{"event_id": "e", "model": "m", "features": {"a": {}}}')
    assert isinstance(item, InvalidEvent)
    assert item.model == "m"


def test_null_label_means_no_label_and_timestamps_are_utc() -> None:
    item = one(
        b'{"event_id": "e", "model": "m", "features": {}, "label": null, "ts": 1700000000000}'
    )
    assert isinstance(item, Event)
    assert not item.has_label
    assert item.ts is not None and item.ts.isoformat() == "2023-11-14T22:13:20+00:00"
    parsed = parse_ts("2026-01-01T01:00:00+01:00")
    assert parsed is not None and parsed.isoformat() == "2026-01-01T00:00:00+00:00"


def test_non_finite_numbers_become_missing_values() -> None:
    from streams.learning.events import validate_event

    event = validate_event({"event_id": "e", "model": "m", "features": {"a": math.inf, "b": 1.0}})
    assert event.features == {"a": None, "b": 1.0}
    assert event.n_missing == 1


def test_dead_letter_sentences_stay_short_whatever_the_input() -> None:
    from streams.learning.model import Limits
    from streams.learning.registry import ERROR_LIMIT, ModelRegistry

    registry = ModelRegistry({}, Limits(), max_event_bytes=10**6)
    raw = orjson.dumps({"event_id": "e", "model": "m", "features": {"k" * 100_000: [1]}})
    (letter,) = registry.handle_events(raw, topic="t", partition=0, offset=0, now=0.0).dead_letters
    assert len(letter.error) <= ERROR_LIMIT
    assert letter.error.startswith("features.kkk")
    assert len(letter.payload) == 64 * 1024
