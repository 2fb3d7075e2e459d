"""Request and response models of the HTTP contract."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)

FeatureValue = StrictBool | StrictInt | StrictFloat | StrictStr | None
Features = dict[str, FeatureValue]


class PredictIn(BaseModel):
    """One instance (``features``) or several (``instances``); never both."""

    model_config = ConfigDict(extra="forbid")

    features: Features | None = None
    instances: list[Features] | None = Field(default=None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _one_of(self) -> PredictIn:
        if (self.features is None) == (self.instances is None):
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


class ModelOut(BaseModel):
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
    n_events: int | None = None
    n_predicted: int | None = None
    n_learned: int | None = None
    n_duplicates: int | None = None
    n_dead_letters: int | None = None
    n_pending_labels: int | None = None
    n_pending_expired: int | None = None
    n_labels_unmatched: int | None = None
    n_labels_waiting: int | None = None
    n_labels_early: int | None = None
    n_labels_duplicate: int | None = None
    n_missing_values: int | None = None
    n_drifts: int | None = None
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
