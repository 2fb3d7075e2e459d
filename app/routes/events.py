"""Events and labels written to Kafka over HTTP, validated by the same rules as the agents."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from app.deps import NodeDep
from app.schemas import AcceptedOut
from streams.learning.errors import InvalidEvent
from streams.learning.events import Event, Label, validate_event, validate_label
from streams.node import Node

router = APIRouter(tags=["events"])

_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "model", "features"],
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "model": {"type": "string"},
        "features": {
            "type": "object",
            "additionalProperties": {"type": ["number", "string", "boolean", "null"]},
        },
        "label": {"type": ["boolean", "number", "string"]},
        "ts": {"type": ["string", "number"], "description": "RFC 3339 or epoch milliseconds"},
    },
}
_LABEL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_id", "model", "label"],
    "properties": {
        "event_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "model": {"type": "string"},
        "label": {"type": ["boolean", "number", "string"]},
        "ts": {"type": ["string", "number"], "description": "RFC 3339 or epoch milliseconds"},
    },
}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI text for a body of one object or a list of them."""
    one_or_many = {"oneOf": [schema, {"type": "array", "items": schema}]}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": one_or_many}}}
    }


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    openapi_extra=_body(_EVENT_SCHEMA),
    responses={413: {"description": "Body too large"}, 422: {"description": "Invalid event"}},
)
async def create_events(request: Request, node: NodeDep) -> AcceptedOut | JSONResponse:
    """Write one event or a list of events to the events topic (one message per model)."""
    return await _write(request, node, validate_event, node.topics.events_topic)


@router.post(
    "/labels",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    openapi_extra=_body(_LABEL_SCHEMA),
    responses={413: {"description": "Body too large"}, 422: {"description": "Invalid label"}},
)
async def create_labels(request: Request, node: NodeDep) -> AcceptedOut | JSONResponse:
    """Write labels for events seen earlier to the labels topic (one message per model)."""
    return await _write(request, node, validate_label, node.topics.labels_topic)


async def _write(
    request: Request, node: Node, validate: Callable[[Any, str], Event | Label], topic: Any
) -> AcceptedOut | JSONResponse:
    raw = await request.body()
    limit = node.settings.max_request_bytes
    if len(raw) > limit:
        return JSONResponse(
            {"detail": f"body is {len(raw)} bytes, over the limit of {limit} bytes"},
            status_code=status.HTTP_413_CONTENT_TOO_LARGE,
        )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _invalid([{"loc": ["body"], "msg": f"body is not valid JSON: {exc}"}])
    batch = isinstance(document, list)
    elements = document if batch else [document]
    if not elements:
        return _invalid([{"loc": ["body"], "msg": "an empty list holds nothing to write"}])
    errors: list[dict[str, Any]] = []
    by_model: dict[str, list[Any]] = defaultdict(list)
    for i, element in enumerate(elements):
        where = f"[{i}]." if batch else ""
        try:
            item = validate(element, where)
            if item.model not in node.registry.models:
                raise InvalidEvent(f"{where}model: unknown model {item.model!r}", f"{where}model")
        except InvalidEvent as exc:
            errors.append({"loc": ["body", *_loc(exc.field)], "msg": str(exc)})
            continue
        by_model[item.model].append(element)
    if errors:
        return _invalid(errors)
    for model, group in by_model.items():
        value = group[0] if len(group) == 1 else group
        await topic.send(key=model.encode(), value=orjson.dumps(value))
    return AcceptedOut(accepted=len(elements))


def _loc(field: str | None) -> list[str | int]:
    """``"[3].features.age"`` -> ``[3, "features", "age"]``."""
    if not field:
        return []
    loc: list[str | int] = []
    for part in field.split("."):
        if part.startswith("[") and part.endswith("]"):
            loc.append(int(part[1:-1]))
        elif part:
            loc.append(part)
    return loc


def _invalid(errors: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
