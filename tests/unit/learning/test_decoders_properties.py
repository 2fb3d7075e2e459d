"""Property tests: the ``events`` and ``labels`` decoders answer every message, never raise.

An agent hands every Kafka message to :func:`decode_events` or :func:`decode_labels` and skips
the :class:`InvalidEvent` elements it gets back; an exception instead would stop the stream
for one bad message. So whatever the bytes (not JSON, JSON of any shape, numbers past 64 bits
or past the float range, lone surrogates, nesting deeper than the parser allows, an event with
one field wrong), the answer is a non-empty list of decoded messages and errors, one per
element, each error with a message. And a valid message comes back field for field.

The examples are derandomized, so CI runs the same ones every time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.learning.errors import InvalidEvent
from streams.learning.events import (
    NO_LABEL,
    Event,
    Label,
    decode_events,
    decode_labels,
    validate_event,
)

Decoder = Callable[[bytes, int], Sequence[object]]

#: Both decoders with the type of what they decode; most properties hold for each.
DECODERS = [
    pytest.param(decode_events, Event, id="events"),
    pytest.param(decode_labels, Label, id="labels"),
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Number spellings ``json.dumps`` never writes: past the float range (orjson refuses them),
#: past 64 bits (orjson reads them as floats), signed zeros, and a few that are not JSON.
RAW_NUMBERS = (
    "1e400", "-1e400", "1E-400", "-0", "-0.0", "1" + "0" * 400, "18446744073709551615",
    "18446744073709551616", "-9223372036854775809", "NaN", "Infinity", "-Infinity", "01", "1.",
    ".5", "+1", "0x10",
)  # fmt: skip
#: ``json.dumps`` writes this string as ``"\u0000raw:N\u0000"``; :func:`to_json` swaps it for
#: ``RAW_NUMBERS[N]``, so a generated value can hold a number no Python float or int spells.
_RAW = "\x00raw:{}\x00"

HUGE_INTS = (10**400, -(10**400), 2**64, 2**64 - 1, 2**63, -(2**63) - 1, -(2**63))


def to_json(value: Any, *, ascii_only: bool = True) -> bytes:
    """``value`` as JSON text, raw numbers swapped in.

    With ``ascii_only`` lone surrogates become ``\\ud800`` escapes (which orjson refuses);
    without, they are written as raw UTF-8-ish bytes (which are not UTF-8 at all).
    """
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    for i, token in enumerate(RAW_NUMBERS):
        text = text.replace(json.dumps(_RAW.format(i)), token)
    return text.encode("utf-8", "surrogatepass")


raw_numbers = st.integers(0, len(RAW_NUMBERS) - 1).map(_RAW.format)
#: Text with lone surrogates (category Cs), which no valid UTF-8 JSON can carry. A list of
#: characters, joined: given the same union as its alphabet, st.text draws no surrogates.
surrogate_text = st.lists(
    st.characters(categories=["Cs"]) | st.characters(), min_size=1, max_size=20
).map("".join)

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),  # nan and infinities included: json.dumps writes NaN and Infinity
    st.text(),
    surrogate_text,
    raw_numbers,
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


def nested(depth: int, kind: str) -> bytes:
    """``depth`` arrays (or objects) inside each other: orjson stops at 1024 levels."""
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


deep_documents = st.builds(nested, st.integers(1, 3000), st.sampled_from(["array", "object"]))

# A valid event, as its producer would write it -----------------------------------------------

event_ids = st.text(min_size=1, max_size=128)  # st.text never draws surrogates
feature_values = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**64 - 1),  # the integers orjson writes and reads back as ints
    st.floats(),  # orjson writes nan and the infinities as null
    st.booleans(),
    st.none(),
)
labels = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
#: ``datetime``'s range, naive: Hypothesis takes naive bounds and attaches the time zone itself.
NAIVE_MIN, NAIVE_MAX = datetime.min, datetime.max  # noqa: DTZ901
DAY, YEAR = timedelta(days=1), timedelta(days=366)
#: Aware instants whose UTC form stays inside ``datetime``'s range whatever the offset.
aware_datetimes = st.datetimes(
    min_value=NAIVE_MIN + YEAR, max_value=NAIVE_MAX - YEAR, timezones=offsets
)
#: Epoch milliseconds from the year 1653 to the year 9892.
epoch_ms = st.integers(-(10**13), 25 * 10**13) | st.floats(-1e13, 2.5e14)
good_timestamps = st.one_of(
    epoch_ms,
    aware_datetimes.map(datetime.isoformat),
    aware_datetimes.map(lambda d: d.astimezone(UTC).isoformat().replace("+00:00", "Z")),
)


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """An event dict that honours the wire contract; ``label`` and ``ts`` may be absent."""
    event: dict[str, Any] = {
        "event_id": draw(event_ids),
        "model": draw(st.text(min_size=1, max_size=20)),
        "features": draw(st.dictionaries(st.text(max_size=10), feature_values, max_size=8)),
    }
    if draw(st.booleans()):
        event["label"] = draw(st.none() | labels)
    if draw(st.booleans()):
        event["ts"] = draw(st.none() | good_timestamps)
    return event


@st.composite
def valid_labels(draw: st.DrawFn) -> dict[str, Any]:
    """A ``labels`` message dict that honours the wire contract; ``ts`` may be absent."""
    message: dict[str, Any] = {
        "event_id": draw(event_ids),
        "model": draw(st.text(min_size=1, max_size=20)),
        "label": draw(labels),
    }
    if draw(st.booleans()):
        message["ts"] = draw(st.none() | good_timestamps)
    return message


# A near-valid event: one field wrong ------------------------------------------------------------

#: Timestamps of every kind: good ones, naive ones, ones at the ends of ``datetime``'s range
#: (whose UTC form may fall outside it), numbers out of range, and not-timestamps at all.
any_timestamps = st.one_of(
    good_timestamps,
    st.datetimes().map(datetime.isoformat),  # naive: no time zone
    st.datetimes(timezones=offsets).map(datetime.isoformat),
    # The first and the last day datetime holds, at any offset.
    st.datetimes(max_value=NAIVE_MIN + DAY, timezones=offsets).map(datetime.isoformat),
    st.datetimes(min_value=NAIVE_MAX - DAY, timezones=offsets).map(datetime.isoformat),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999+00:00", "2026-02-30T00:00:00Z", "2026-01-01", "",
            "2026-01-01T00:00:00+24:00", "now",
        ]
    ),
    st.integers(),
    st.sampled_from(HUGE_INTS),
    st.floats(),
    json_values,
)  # fmt: skip
#: Strings at and around the event_id limit of 128 characters (characters, not bytes).
boundary_ids = st.builds(
    lambda n, char: char * n, st.sampled_from([0, 1, 127, 128, 129]), st.sampled_from("xé😀")
)


@st.composite
def mutations(draw: st.DrawFn, message: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """``message`` with one thing changed: a field removed, nulled, retyped or added, an
    event_id at the length limit, a timestamp of any kind, or one feature of any JSON value."""
    mutated = dict(message)
    how = draw(st.sampled_from(["remove", "null", "retype", "extra", "event_id", "ts", "feature"]))
    field = draw(st.sampled_from(fields))
    if how == "remove":
        mutated.pop(field, None)
    elif how == "null":
        mutated[field] = None
    elif how == "retype":
        mutated[field] = draw(json_values)
    elif how == "extra":
        mutated[draw(st.text(max_size=10).filter(lambda k: k not in fields))] = draw(json_values)
    elif how == "event_id":
        mutated["event_id"] = draw(boundary_ids)
    elif how == "ts":
        mutated["ts"] = draw(any_timestamps)
    elif "features" in mutated:
        mutated["features"] = {**mutated["features"], draw(st.text(max_size=5)): draw(json_values)}
    return mutated


EVENT_FIELDS = ("event_id", "model", "features", "label", "ts")
LABEL_FIELDS = ("event_id", "model", "label", "ts")
near_valid_events = valid_events().flatmap(lambda e: mutations(e, EVENT_FIELDS))
near_valid_labels = valid_labels().flatmap(lambda m: mutations(m, LABEL_FIELDS))


# The checks -----------------------------------------------------------------------------------


def check_answer(answer: object, raw: bytes, max_bytes: int, kind: type[Any]) -> None:
    """What every answer satisfies: a non-empty list of ``kind`` and :class:`InvalidEvent`,
    one per array element, each error with a message."""
    assert isinstance(answer, list)
    assert answer, "an answer is never empty: an empty batch is itself an error"
    for item in answer:
        assert isinstance(item, (kind, InvalidEvent)), f"{type(item).__name__} in the answer"
        if isinstance(item, InvalidEvent):
            assert str(item).strip(), "an InvalidEvent always says what is wrong"
    if len(raw) > max_bytes:
        assert len(answer) == 1 and "over the limit" in str(answer[0])
        return
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        assert len(answer) == 1 and "not valid JSON" in str(answer[0])
        return
    if isinstance(document, list) and document:
        assert len(answer) == len(document), "one answer per element of a batch"


def is_json(raw: bytes) -> bool:
    """Whether orjson reads ``raw`` (a raw number or a lone surrogate makes it refuse)."""
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def expected_ts(value: Any) -> datetime | None:
    """What the decoder makes of a good timestamp: epoch milliseconds or RFC 3339, in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.fromisoformat(value).astimezone(UTC)
    return EPOCH + timedelta(milliseconds=value)


def check_ts(ts: datetime | None, sent: Any) -> None:
    expected = expected_ts(sent)
    if expected is None:
        assert ts is None
        return
    assert ts is not None and ts.utcoffset() == timedelta(0), "timestamps are aware, in UTC"
    # Epoch milliseconds become float seconds, and near the year 9999 a double holds those
    # to about 30 microseconds.
    assert abs(ts - expected) <= timedelta(microseconds=100)


def typed(mapping: dict[str, Any]) -> dict[str, tuple[type, Any]]:
    """``mapping`` with each value's exact type beside it (``1 == True`` in Python)."""
    return {key: (type(value), value) for key, value in mapping.items()}


SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None)


@pytest.mark.parametrize(("decode", "kind"), DECODERS)
@SETTINGS
@given(raw=st.binary(max_size=300), max_bytes=st.integers(0, 400))
def test_arbitrary_bytes_are_answered(
    decode: Decoder, kind: type[Any], raw: bytes, max_bytes: int
) -> None:
    check_answer(decode(raw, max_bytes), raw, max_bytes, kind)


@pytest.mark.parametrize(("decode", "kind"), DECODERS)
@SETTINGS
@given(value=json_values, ascii_only=st.booleans(), batch=st.booleans())
def test_arbitrary_json_is_answered(
    decode: Decoder, kind: type[Any], value: Any, ascii_only: bool, batch: bool
) -> None:
    raw = to_json([value, value] if batch else value, ascii_only=ascii_only)
    check_answer(decode(raw, 1 << 20), raw, 1 << 20, kind)


@pytest.mark.parametrize(("decode", "kind"), DECODERS)
@settings(SETTINGS, max_examples=30)
@given(raw=deep_documents)
def test_deep_nesting_is_answered(decode: Decoder, kind: type[Any], raw: bytes) -> None:
    check_answer(decode(raw, 1 << 20), raw, 1 << 20, kind)


#: The smallest valid event, the base of the explicit examples.
_EDGE = {"event_id": "e", "model": "m", "features": {}}
_LABEL = {"event_id": "e", "model": "m", "label": 1}


@SETTINGS
@given(event=near_valid_events, batch=st.booleans())
# Instants whose UTC form falls outside datetime's range: year 0 and year 10000.
@example(event={**_EDGE, "ts": "0001-01-01T00:00:00+01:00"}, batch=False)
@example(event={**_EDGE, "ts": "9999-12-31T23:59:59-01:00"}, batch=True)
def test_near_valid_events_are_answered(event: dict[str, Any], batch: bool) -> None:
    raw = to_json([_EDGE, event] if batch else event)
    answer = decode_events(raw, 1 << 20)
    check_answer(answer, raw, 1 << 20, Event)
    event_id = event.get("event_id")
    if isinstance(event_id, str) and not 1 <= len(event_id) <= 128:
        assert isinstance(answer[-1], InvalidEvent)
        assert str(answer[-1].field).endswith("event_id")
    if event.keys() - set(EVENT_FIELDS) and is_json(raw):
        assert isinstance(answer[-1], InvalidEvent) and "unknown field" in str(answer[-1])


@SETTINGS
@given(message=near_valid_labels, batch=st.booleans())
@example(message={**_LABEL, "ts": "0001-01-01T00:00:00+01:00"}, batch=False)
def test_near_valid_labels_are_answered(message: dict[str, Any], batch: bool) -> None:
    raw = to_json([message, message] if batch else message)
    answer = decode_labels(raw, 1 << 20)
    check_answer(answer, raw, 1 << 20, Label)
    if message.keys() - set(LABEL_FIELDS) and is_json(raw):
        assert isinstance(answer[0], InvalidEvent) and "unknown field" in str(answer[0])


@pytest.mark.parametrize(("decode", "kind"), DECODERS)
@SETTINGS
@given(ts=any_timestamps)
def test_timestamps_of_every_kind_are_answered(decode: Decoder, kind: type[Any], ts: Any) -> None:
    raw = to_json({**_EDGE, "label": 1, "ts": ts} if kind is Event else {**_LABEL, "ts": ts})
    answer = decode(raw, 1 << 20)
    check_answer(answer, raw, 1 << 20, kind)
    (item,) = answer
    if isinstance(item, kind):
        assert item.ts is None or item.ts.utcoffset() == timedelta(0)


@SETTINGS
@given(event=valid_events(), batch=st.booleans())
def test_a_valid_event_round_trips(event: dict[str, Any], batch: bool) -> None:
    raw = orjson.dumps([event] if batch else event)
    (item,) = decode_events(raw, max_bytes=len(raw))
    assert isinstance(item, Event), item
    assert (item.event_id, item.model) == (event["event_id"], event["model"])
    # orjson writes nan and the infinities as null: they arrive as missing values.
    sent = {
        name: None if isinstance(value, float) and not math.isfinite(value) else value
        for name, value in event["features"].items()
    }
    assert typed(item.features) == typed(sent)
    assert item.n_missing == sum(value is None for value in sent.values())
    label = event.get("label")
    if label is None:  # absent or null: the event carries no label
        assert item.label is NO_LABEL and not item.has_label
    else:
        assert item.has_label and (type(item.label), item.label) == (type(label), label)
    check_ts(item.ts, event.get("ts"))


@SETTINGS
@given(message=valid_labels(), batch=st.booleans())
def test_a_valid_label_round_trips(message: dict[str, Any], batch: bool) -> None:
    raw = orjson.dumps([message] if batch else message)
    (item,) = decode_labels(raw, max_bytes=len(raw))
    assert isinstance(item, Label), item
    assert (item.event_id, item.model) == (message["event_id"], message["model"])
    assert (type(item.label), item.label) == (type(message["label"]), message["label"])
    check_ts(item.ts, message.get("ts"))


@SETTINGS
@given(
    features=st.dictionaries(
        st.text(max_size=5), st.floats() | st.none() | st.integers() | st.text(max_size=5)
    )
)
def test_non_finite_features_become_missing(features: dict[str, Any]) -> None:
    """Events built in Python (not decoded from JSON) can carry nan and the infinities."""
    sent = dict(features)
    event = validate_event({"event_id": "e", "model": "m", "features": features})
    missing = {
        name
        for name, value in sent.items()
        if value is None or (isinstance(value, float) and not math.isfinite(value))
    }
    assert {name for name, value in event.features.items() if value is None} == missing
    assert event.n_missing == len(missing)
    assert all(event.features[name] == sent[name] for name in sent.keys() - missing)
