"""Every record streamlearn writes to a topic, typed, each encoding itself as the wire
contract (README, "Wire contract") says; and the JSON Schema of what it reads.

One class per value type: :class:`Prediction` (``predictions``), :class:`MetricsReport`
(``metrics``), :class:`DriftDetected` (``drift``), :class:`Promotion` (``promotions``),
:class:`DeadLetter` (``dead-letters``), :class:`SnapshotPointer` (``snapshots``, for a
snapshot too large to travel whole) and :class:`AuditEntry` (``audit``, one per call of an
admin route); a :class:`Reroute` is an input message written again to its model's partition.
Events and labels are read, not written, by the node: :func:`event_schema` and
:func:`label_schema` describe them for the HTTP API, by the rules of
:mod:`streams.learning.events`. Keys are the model name, except for dead letters, which keep
the key of the message they came from.

Examples
--------
>>> Prediction("e1", "m", 1, True, "2026-01-01T00:00:00+00:00", {False: 0.2, True: 0.8}).encode()
b'{"event_id":"e1","model":"m","model_version":1,"prediction":true,\
"ts":"2026-01-01T00:00:00+00:00","proba":{"false":0.2,"true":0.8}}'
>>> DeadLetter("events", 0, 7, "message is not valid JSON", "{").encode()
b'{"topic":"events","partition":0,"offset":7,"error":"message is not valid JSON","payload":"{"}'
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

#: Class labels are dict keys in ``proba``: JSON writes ``true``/``false``, ``1``, ``"a"``.
_OPTIONS = orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class Prediction:
    """A prediction, published before its event is learned (``proba`` for classifiers)."""

    event_id: str
    model: str
    model_version: int
    prediction: Any
    ts: str | None
    proba: dict[Any, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {
            "event_id": self.event_id,
            "model": self.model,
            "model_version": self.model_version,
            "prediction": self.prediction,
            "ts": self.ts,
        }
        if self.proba is not None:
            out["proba"] = self.proba
        return out

    def encode(self) -> bytes:
        return orjson.dumps(self.as_dict(), option=_OPTIONS)


@dataclass(slots=True)
class DriftDetected:
    """One detection by one detector, on the error stream (``input="error"``) or a feature."""

    model: str
    ts: str
    detector: str
    input: str
    n_learned: int
    detail: dict[str, Any]

    def encode(self) -> bytes:
        return orjson.dumps(self, option=_OPTIONS)


@dataclass(slots=True)
class Promotion:
    """A challenger became the champion (``reason``: ``auto``, ``drift`` or ``admin``)."""

    model: str
    from_: str
    to: str
    reason: str
    metric: str
    champion_rolling: float | None
    challenger_rolling: float | None
    n_learned: int
    model_version: int
    #: Admin promotions: the snapshot of the champion taken first, to roll back to.
    snapshot_before: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"model": self.model, "from": self.from_, **asdict(self)}
        del out["from_"]
        if self.snapshot_before is None:
            del out["snapshot_before"]
        return out

    def encode(self) -> bytes:
        return orjson.dumps(self.as_dict(), option=_OPTIONS)


@dataclass(slots=True)
class DeadLetter:
    """A message, or one element of a batch, that was not learned, and why."""

    topic: str
    partition: int
    offset: int
    error: str
    #: The original message as text, cut at 64 KiB.
    payload: str
    #: The model it names, when it names a declared one: for the log line, not on the wire.
    model: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {"topic": self.topic, "partition": self.partition, "offset": self.offset,
             "error": self.error, "payload": self.payload}
        )  # fmt: skip


@dataclass(slots=True)
class Reroute:
    """Events (or labels) that arrived on another partition than their model's, to be written
    again, unchanged, to the same topic on ``partition``: any producer's partitioner works.

    ``source`` names where they arrived (``topic:partition:offset``); the copy carries it in
    the :data:`REROUTED_FROM` header, so that the receiving model counts it and a copy that
    arrives misplaced again is dead-lettered instead of going round.
    """

    partition: int
    #: The model name of the first element: the key a murmur2 producer would have used.
    key: bytes
    value: bytes
    source: str


#: The header a rerouted copy carries, naming where its original arrived.
REROUTED_FROM = "streamlearn-rerouted-from"


@dataclass(slots=True)
class MetricsReport:
    """A model's metrics, published every ``STREAMLEARN_METRICS_INTERVAL_SECONDS``."""

    model: str
    ts: str
    n_learned: int
    cumulative: dict[str, float]
    rolling: dict[str, float]
    window: int
    #: The leaderboard, when the model has challengers.
    candidates: list[dict[str, Any]] | None = None

    def encode(self) -> bytes:
        out = asdict(self)
        if self.candidates is None:
            del out["candidates"]
        return orjson.dumps(out, option=_OPTIONS)


@dataclass(slots=True)
class SnapshotPointer:
    """Where a snapshot too large for the topic lies (readable through a shared volume)."""

    model: str
    version: int
    created_at: str
    offsets: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    path: str = ""

    def encode(self) -> builtins.bytes:
        return orjson.dumps(self)

    @classmethod
    def decode(cls, value: builtins.bytes) -> SnapshotPointer:
        document = orjson.loads(value)
        return cls(**{k: document[k] for k in cls.__dataclass_fields__ if k in document})


@dataclass(slots=True)
class Caller:
    """Who called an admin route: the fingerprint of the token presented (never the token),
    and the client's address (the original client's, for a call another node relayed)."""

    #: The first 16 hex digits of the SHA-256 of the token presented; ``None`` without one.
    token_fingerprint: str | None
    client: str | None
    #: For a relayed call, the node that relayed it: ``{"node": its URL, "address": the
    #: address the call came from}``, which is what vouches for ``client``.
    relayed_by: dict[str, str | None] | None = None


@dataclass(slots=True)
class AuditEntry:
    """One call of an admin route, whatever came of it (refused calls too): who, what, when,
    on which node, and the result (``"ok"``, or the error sentence the caller got).

    >>> AuditEntry("2026-01-01T00:00:00+00:00", "restore", "m", Caller("9f86d081884c7d65",
    ...     "10.0.0.7"), "ok", 200, "http://10.0.0.2:8000", {"version": 3}).encode()
    b'{"ts":"2026-01-01T00:00:00+00:00","action":"restore","model":"m","who":\
{"token_fingerprint":"9f86d081884c7d65","client":"10.0.0.7","relayed_by":null},"result":"ok",\
"status":200,"node":"http://10.0.0.2:8000","detail":{"version":3}}'
    """

    ts: str
    #: ``snapshot``, ``restore`` or ``promote``.
    action: str
    model: str
    who: Caller
    result: str
    #: The HTTP status the caller got.
    status: int
    #: The node that answered (and did what was asked).
    node: str
    #: What the action was about and what it made: the version restored, the challenger
    #: promoted, the snapshot taken.
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def encode(self) -> bytes:
        return orjson.dumps(self, option=_OPTIONS)


#: ``ts``, as :func:`streams.learning.events.parse_ts` reads it: an RFC 3339 string with a
#: time zone, or epoch milliseconds within Python's calendar (the years 1 to 9999: from
#: 0001-01-01T00:00:00Z, up to but not including 10000-01-01T00:00:00Z). The pattern leaves
#: out what RFC 3339 allows and ``datetime.fromisoformat`` refuses: a lower-case "t" or "z",
#: a leap second (":60").
_TS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "format": "date-time",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-5][0-9]"
            "([.][0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$",
        },
        {"type": "number", "minimum": -62_135_596_800_000, "exclusiveMaximum": 253_402_300_800_000},
        {"type": "null"},
    ],
    "description": "RFC 3339 with a time zone, or epoch milliseconds; null or left out: none",
}
_EVENT_ID_SCHEMA: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 128}
_LABEL_SCHEMA: dict[str, Any] = {"type": ["boolean", "number", "string"]}


def event_schema(model: dict[str, Any]) -> dict[str, Any]:
    """One ``events`` element, by the rules of :func:`streams.learning.events.validate_event`
    (``model``: the schema of the model name, e.g. an enum of the declared models)."""
    return {
        "type": "object",
        "required": ["event_id", "model", "features"],
        "additionalProperties": False,
        "properties": {
            "event_id": _EVENT_ID_SCHEMA,
            "model": model,
            "features": {
                "type": "object",
                "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
            },
            "label": {**_LABEL_SCHEMA, "type": [*_LABEL_SCHEMA["type"], "null"],
                      "description": "null or left out: not labelled yet"},
            "ts": _TS_SCHEMA,
        },
    }  # fmt: skip


def label_schema(model: dict[str, Any]) -> dict[str, Any]:
    """One ``labels`` element, by the rules of :func:`streams.learning.events.validate_label`."""
    return {
        "type": "object",
        "required": ["event_id", "model", "label"],
        "additionalProperties": False,
        "properties": {
            "event_id": _EVENT_ID_SCHEMA,
            "model": model,
            "label": _LABEL_SCHEMA,
            "ts": _TS_SCHEMA,
        },
    }
