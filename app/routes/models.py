"""Models: their state, metrics and live predictions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError

from app.deps import MODEL_RESPONSES, ModelDep, OwnershipDep, PeersDep, RegistryDep
from app.forwarding import was_forwarded
from app.schemas import (
    INVALID_RESPONSE,
    DriftOut,
    HistoryOut,
    MetricsOut,
    ModelOut,
    PredictIn,
    PredictionOut,
    PredictOut,
)
from streams.learning.errors import InvalidEvent
from streams.learning.model import OnlineModel

router = APIRouter(prefix="/models", tags=["models"])


def _model_out(model: OnlineModel, owner: str) -> ModelOut:
    return ModelOut(
        **model.state(),
        owner=owner,
        spec=model.spec.public(),
        pipeline=model.pipeline_description(),
    )


@router.get("", response_model=list[ModelOut], responses=INVALID_RESPONSE)
async def read_models(
    registry: RegistryDep,
    ownership: OwnershipDep,
    peers: PeersDep,
    request: Request,
    local: bool = Query(False, description="only the models live on this node"),
) -> list[ModelOut]:
    """Every model of the group with its owner, spec, version and counters (asked of the
    node that holds it)."""
    here = ownership.url
    found = {m.name: _model_out(m, here) for m in registry if ownership.is_live(m.name)}
    silent: set[str] = set()
    if not local and not was_forwarded(request.scope):
        for url, answer in (await peers.gather("/models?local=true")).items():
            if not isinstance(answer, list):
                silent.add(url)
                continue
            for item in answer:
                found.setdefault(item["name"], ModelOut.model_validate(item))
        for model in registry:
            if model.name not in found:
                owner = ownership.owner_of(model.name)
                found[model.name] = ModelOut(
                    name=model.name,
                    task=model.spec.task,
                    status="unreachable" if owner in silent else "moving",
                    owner=owner,
                    spec=model.spec.public(),
                    pipeline=model.pipeline_description(),
                )
    return [found[name] for name in registry.models if name in found]


@router.get("/{name}", response_model=ModelOut, responses=MODEL_RESPONSES)
async def read_model(model: ModelDep, ownership: OwnershipDep) -> ModelOut:
    """One model: spec, built pipeline, version, counters and owner."""
    return _model_out(model, ownership.url)


@router.post(
    "/{name}/predict",
    response_model=PredictOut,
    response_model_exclude_none=True,
    responses=MODEL_RESPONSES,
)
async def predict(model: ModelDep, payload: PredictIn) -> PredictOut:
    """Predict one instance or many with the live model; never learns."""
    if payload.features is not None:
        y_pred, proba = _predict_one(model, payload.features, ("body",))
        return PredictOut(
            model=model.name,
            model_version=model.model_version,
            prediction=y_pred,
            proba=_proba_out(proba),
        )
    assert payload.instances is not None  # guaranteed by PredictIn
    outputs = []
    for i, x in enumerate(payload.instances):
        y_pred, proba = _predict_one(model, x, ("body", "instances", i))
        outputs.append(PredictionOut(prediction=y_pred, proba=_proba_out(proba)))
    return PredictOut(model=model.name, model_version=model.model_version, predictions=outputs)


def _predict_one(
    model: OnlineModel, x: dict[str, Any], where: tuple[str | int, ...]
) -> tuple[Any, dict[Any, float] | None]:
    """The model's prediction, or a 422 naming the feature it cannot take (the same rules
    as on the events topic)."""
    try:
        return model.predict(x)
    except InvalidEvent as exc:
        loc = (*where, *(exc.field or "features").split("."))
        raise RequestValidationError(
            [{"type": "value_error", "loc": loc, "msg": str(exc), "input": None}]
        ) from None


@router.get("/{name}/metrics", response_model=MetricsOut, responses=MODEL_RESPONSES)
async def read_metrics(model: ModelDep) -> MetricsOut:
    """Cumulative and rolling progressive-validation metrics."""
    return MetricsOut(
        model=model.name,
        n_learned=model.n_learned,
        window=model.metrics.window,
        cumulative=model.metrics.cumulative(),
        rolling=model.metrics.rolling(),
    )


@router.get("/{name}/drift", response_model=DriftOut, responses=MODEL_RESPONSES)
async def read_drift(model: ModelDep) -> DriftOut:
    """Each drift detector: what it watches, whether it fired, how often, its internal state."""
    return DriftOut(
        model=model.name,
        drift_policy=model.spec.drift_policy,
        model_version=model.model_version,
        detectors=model.drift.state(),
        recent=[
            {"detector": d.detector, "input": d.input, "n_learned": d.n_learned,
             "ts": d.at.isoformat()}
            for d in model.drift.recent
        ],
    )  # fmt: skip


@router.get("/{name}/history", response_model=HistoryOut, responses=MODEL_RESPONSES)
async def read_history(model: ModelDep) -> HistoryOut:
    """Rolling metrics sampled as the model learns (for the dashboard's curves)."""
    return HistoryOut(model=model.name, window=model.metrics.window, points=list(model.history))


def _proba_out(proba: dict[Any, float] | None) -> dict[str, float] | None:
    """Class probabilities with JSON keys: ``True`` -> ``"true"``, as on the wire."""
    if proba is None:
        return None
    return {_label_key(label): float(p) for label, p in proba.items()}


def _label_key(label: Any) -> str:
    if isinstance(label, bool):
        return "true" if label else "false"
    return str(label)
