"""Request and response models of the HTTP contract."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
    model_validator,
)

from streams.learning.counters import COUNTERS
from streams.learning.guard import MAX_MAGNITUDE

#: A feature value: what the events topic takes. Numbers past ``MAX_MAGNITUDE`` are refused
#: by every model (River's running statistics overflow), so the schema says so.
FeatureValue = Annotated[
    StrictBool | StrictInt | StrictFloat | StrictStr | None,
    WithJsonSchema({"type": ["boolean", "number", "string", "null"],
                    "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE}),
]  # fmt: skip
#: ``fail_fast``: the first bad value ends validation, so a body of a million bad values
#: costs one error, not a million (pydantic would list every one, four errors each).
Features = Annotated[dict[str, FeatureValue], Field(fail_fast=True)]
Instances = Annotated[list[Features], Field(min_length=1, max_length=10_000, fail_fast=True)]


def _absent_not_null(schema: dict[str, Any]) -> None:
    """The JSON schema of an optional field that may be left out but never sent as null."""
    schema.pop("default", None)
    schema.update(next(s for s in schema.pop("anyOf") if s.get("type") != "null"))


class PredictIn(BaseModel):
    """One instance (``features``) or several (``instances``): exactly one of the two."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"minProperties": 1, "maxProperties": 1}
    )

    features: Features | None = Field(default=None, json_schema_extra=_absent_not_null)
    instances: Instances | None = Field(default=None, json_schema_extra=_absent_not_null)

    @model_validator(mode="after")
    def _one_of(self) -> PredictIn:
        # One field, and not null: what the schema says with minProperties = maxProperties = 1.
        if len(self.model_fields_set) != 1 or (self.features is None and self.instances is None):
            raise ValueError(
                "send either 'features' (one instance) or 'instances' (a list), not both or neither"
            )
        return self


class PredictionOut(BaseModel):
    prediction: Any
    proba: dict[str, float] | None = None


class PredictOut(BaseModel):
    model: str
    model_version: int
    prediction: Any = None
    proba: dict[str, float] | None = None
    predictions: list[PredictionOut] | None = None


class MetricsOut(BaseModel):
    model: str
    n_learned: int
    window: int
    cumulative: dict[str, float | None]
    rolling: dict[str, float | None]


#: One optional field per counter of :class:`streams.learning.counters.Counters`: the API
#: shows what the model counts, declared once.
_CountersOut = create_model(
    "CountersOut",
    **dict.fromkeys(COUNTERS, (int | None, None)),  # type: ignore[call-overload]
)


class ModelOut(_CountersOut):  # the counters first, made from Counters
    """A model of the group. ``status`` is ``live`` when its owner answered (then every
    field is filled), ``moving`` while no node holds it (a rebalance), ``unreachable`` when
    its owner did not answer; then only the declaration and the owner are known."""

    name: str
    task: str
    status: str = "live"
    owner: str | None
    spec: dict[str, Any]
    pipeline: dict[str, Any]
    model_version: int | None = None
    champion: str | None = None
    n_challengers: int | None = None
    n_pending_labels: int | None = None
    n_labels_waiting: int | None = None
    n_features: int | None = None
    label_lag: dict[str, float | int | None] | None = None
    last_event_at: str | None = None


class AcceptedOut(BaseModel):
    accepted: int


class HealthOut(BaseModel):
    status: str
    detail: str | None = None
    node: str | None = None
    #: Input partitions held (``topic:partition``) and models live on this node.
    partitions: list[str] | None = None
    models: list[str] | None = None


class DriftOut(BaseModel):
    model: str
    drift_policy: str
    model_version: int
    detectors: list[dict[str, Any]]
    recent: list[dict[str, Any]]


class HistoryOut(BaseModel):
    model: str
    window: int
    points: list[dict[str, Any]]


class SnapshotOut(BaseModel):
    version: int
    created_at: str
    offsets: dict[str, int]
    bytes: int


class RestoreOut(BaseModel):
    model: str
    model_version: int
    n_learned: int
    snapshot: SnapshotOut


class SpecVersionOut(BaseModel):
    """One version of a model's spec in the registry."""

    name: str
    version: int
    #: The fields of its ``[models.NAME]`` table, every default filled in.
    spec: dict[str, Any]
    #: The fingerprint of the admin token that wrote it (``file``: seeded from the models file).
    who: str | None
    when: str


class SpecChangeOut(SpecVersionOut):
    """What a deploy or a retirement did: ``created``, ``rebuilt`` (a new model, learned from
    scratch), ``in_place``, ``unchanged`` or ``retired``."""

    change: str


class ErrorOut(BaseModel):
    """Every error but a 422: what went wrong, in a sentence."""

    detail: str


class FieldErrorOut(BaseModel):
    """One refused field: where (``loc``, e.g. ``["body", 3, "model"]``), why (``msg``,
    ``type``), and a short excerpt of what was sent (``input``, ``ctx``)."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class InvalidOut(BaseModel):
    """A 422: the fields refused, at most 100 (then one more item says how many were left out)."""

    detail: list[FieldErrorOut]


#: The 422 of a route that validates its parameters or its body.
INVALID_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {"model": InvalidOut, "description": "A parameter or the body is invalid: `loc` names it"}
}
