"""Decode and validate ``events`` messages: one JSON object, or an array of them.

Each element is checked on its own, so one bad element never costs its neighbours.

Examples
--------
>>> raw = b'[{"event_id": "a", "model": "m", "features": {"x": 1}}]'
>>> [e.event_id for e in decode_events(raw, max_bytes=1024)]
['a']
>>> decode_events(b'{"event_id": "", "model": "m", "features": {}}', 1024)[0]
InvalidEvent('event_id must be a string of 1 to 128 characters, got an empty string')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import NoneType
from typing import Any, TypeVar

import orjson

from streams.learning.errors import InvalidEvent

#: Sentinel for "this event carries no label".
NO_LABEL: Any = object()

_FEATURE_TYPES = (str, int, float, bool, type(None))
_SCALAR_TYPES = frozenset({str, int, bool})
_EVENT_FIELDS = frozenset({"event_id", "model", "features", "label", "ts"})
_LABEL_TYPES = (str, int, float, bool)
_MISSING: Any = object()
_T = TypeVar("_T")


@dataclass(slots=True)
class Event:
    """One validated event. ``label`` is :data:`NO_LABEL` when absent."""

    event_id: str
    model: str
    features: dict[str, Any]
    label: Any = NO_LABEL
    ts: datetime | None = None
    n_missing: int = 0
    #: New feature names its model left out (past ``max_features``).
    n_dropped: int = 0

    @property
    def has_label(self) -> bool:
        return self.label is not NO_LABEL


@dataclass(slots=True)
class Label:
    """A label for an event seen earlier (a ``labels`` message)."""

    event_id: str
    model: str
    label: Any
    ts: datetime | None = None


def decode_events(raw: bytes, max_bytes: int) -> list[Event | InvalidEvent]:
    """Each element of an ``events`` message, as an :class:`Event` or an :class:`InvalidEvent`."""
    return _decode(raw, max_bytes, validate_event)


def decode_labels(raw: bytes, max_bytes: int) -> list[Label | InvalidEvent]:
    """Each element of a ``labels`` message, as a :class:`Label` or an :class:`InvalidEvent`."""
    return _decode(raw, max_bytes, validate_label)


def _decode(
    raw: bytes, max_bytes: int, validate: Callable[[Any, str], _T]
) -> list[_T | InvalidEvent]:
    if len(raw) > max_bytes:
        return [InvalidEvent(f"message is {len(raw)} bytes, over the limit of {max_bytes} bytes")]
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [InvalidEvent(f"message is not valid JSON: {exc}")]
    if type(document) is dict:  # one element, the common case: no index in its errors
        try:
            return [validate(document, "")]
        except InvalidEvent as exc:
            return [exc]
    elements = document if isinstance(document, list) else [document]
    if not elements:
        return [InvalidEvent("message is an empty array: a batch needs at least one element")]
    out: list[_T | InvalidEvent] = []
    for i, element in enumerate(elements):
        try:
            out.append(validate(element, f"[{i}]." if element is not document else ""))
        except InvalidEvent as exc:
            out.append(exc)
    return out


def validate_event(obj: Any, where: str = "") -> Event:
    """Check one decoded event object against the wire contract."""
    if not isinstance(obj, dict):
        raise InvalidEvent(
            f"{where}event must be a JSON object, got {_kind(obj)}", where.rstrip(".") or None
        )
    event_id, model = _identity(obj, where)
    try:
        return _validate_body(obj, event_id, model, where)
    except InvalidEvent as exc:
        exc.model = model
        raise


def _identity(obj: dict[str, Any], where: str) -> tuple[str, str]:
    """The ``event_id`` and ``model`` fields every message carries, checked."""
    event_id = obj.get("event_id", _MISSING)
    if not isinstance(event_id, str) or not 1 <= len(event_id) <= 128:
        got = "an empty string" if event_id == "" else _kind(event_id)
        if isinstance(event_id, str) and event_id:
            got = f"{len(event_id)} characters"
        raise InvalidEvent(
            f"{where}event_id must be a string of 1 to 128 characters, got {got}",
            f"{where}event_id",
        )
    model = obj.get("model", _MISSING)
    if not isinstance(model, str) or not model:
        raise InvalidEvent(
            f"{where}model must be a non-empty string, got {_kind(model)}", f"{where}model"
        )
    return event_id, model


def _validate_body(obj: dict[str, Any], event_id: str, model: str, where: str) -> Event:
    features = obj.get("features", _MISSING)
    if not isinstance(features, dict):
        raise InvalidEvent(
            f"{where}features must be an object, got {_kind(features)}", f"{where}features"
        )
    n_missing = 0
    for name, value in features.items():
        kind = type(value)  # exact types: this loop runs for every feature of every event
        if kind is float:
            if not math.isfinite(value):
                features[name] = None
                n_missing += 1
        elif kind is NoneType:
            n_missing += 1
        elif kind not in _SCALAR_TYPES and not isinstance(value, _FEATURE_TYPES):
            raise InvalidEvent(
                f"{where}features.{name} must be a number, string, bool or null,"
                f" got {_kind(value)}",
                f"{where}features.{name}",
            )
    label = obj.get("label", NO_LABEL)
    if label is None:
        label = NO_LABEL
    elif label is not NO_LABEL and not isinstance(label, _LABEL_TYPES):
        raise InvalidEvent(
            f"{where}label must be a bool, number or string, got {_kind(label)}", f"{where}label"
        )
    unknown = obj.keys() - _EVENT_FIELDS if len(obj) > 3 + ("label" in obj) else ()
    if unknown:
        raise InvalidEvent(
            f"{where}unknown field {sorted(unknown)[0]!r}", f"{where}{sorted(unknown)[0]}"
        )
    ts = obj.get("ts")
    return Event(
        event_id, model, features, label, parse_ts(ts, f"{where}ts") if ts is not None else None,
        n_missing,
    )  # fmt: skip


def validate_label(obj: Any, where: str = "") -> Label:
    """Check one decoded ``labels`` object against the wire contract."""
    if not isinstance(obj, dict):
        raise InvalidEvent(f"{where}label message must be a JSON object, got {_kind(obj)}")
    event_id, model = _identity(obj, where)
    try:
        label = obj.get("label", _MISSING)
        if not isinstance(label, _LABEL_TYPES):
            raise InvalidEvent(
                f"{where}label must be a bool, number or string, got {_kind(label)}",
                f"{where}label",
            )
        unknown = obj.keys() - {"event_id", "model", "label", "ts"}
        if unknown:
            first = sorted(unknown)[0]
            raise InvalidEvent(f"{where}unknown field {first!r}", f"{where}{first}")
        return Label(event_id, model, label, parse_ts(obj.get("ts"), f"{where}ts"))
    except InvalidEvent as exc:
        exc.model = model
        raise


def finite_features(features: dict[str, Any]) -> dict[str, Any]:
    """``features`` with non-finite numbers as missing values (``None``), as on the events
    topic; the same dict when there are none."""
    if all(type(v) is not float or math.isfinite(v) for v in features.values()):
        return features
    return {
        k: None if type(v) is float and not math.isfinite(v) else v for k, v in features.items()
    }


def parse_ts(value: Any, field: str = "ts") -> datetime | None:
    """An RFC 3339 string or epoch milliseconds as an aware UTC datetime (``None`` if absent)."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            pass
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is None:
                raise InvalidEvent(
                    f"{field} must carry a time zone (RFC 3339), got {value!r}", field
                )
            try:
                return parsed.astimezone(UTC)
            except OverflowError:  # 9999-12-31T23:59:59-01:00 is past datetime's range in UTC
                pass
    raise InvalidEvent(
        f"{field} must be an RFC 3339 string or epoch milliseconds, got {value!r}", field
    )


def _kind(value: Any) -> str:
    """How a JSON value reads in an error sentence."""
    if value is _MISSING:
        return "nothing (the field is missing)"
    if value is None:
        return "null"
    return {
        bool: "a bool", int: "a number", float: "a number", str: "a string",
        list: "an array", dict: "an object",
    }.get(type(value), type(value).__name__)  # fmt: skip
