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
    name: str
    task: str
    model_version: int
    champion: str
    n_challengers: int
    n_events: int
    n_predicted: int
    n_learned: int
    n_duplicates: int
    n_dead_letters: int
    n_pending_labels: int
    n_pending_expired: int
    n_labels_unmatched: int
    n_labels_waiting: int
    n_labels_early: int
    n_labels_duplicate: int
    n_missing_values: int
    n_drifts: int
    label_lag: dict[str, float | int | None]
    last_event_at: str | None
    owner: str
    spec: dict[str, Any]
    pipeline: dict[str, Any]


class AcceptedOut(BaseModel):
    accepted: int


class HealthOut(BaseModel):
    status: str
    detail: str | None = None


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
