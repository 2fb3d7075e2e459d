"""Events written to Kafka over HTTP, validated by the same rules as the agent."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from app.deps import NodeDep
from app.schemas import AcceptedOut
from streams.learning.errors import InvalidEvent
from streams.learning.events import validate_event

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
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA}]}
            }
        },
    }
}


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AcceptedOut,
    openapi_extra=_BODY,
    responses={413: {"description": "Body too large"}, 422: {"description": "Invalid event"}},
)
async def create_events(request: Request, node: NodeDep) -> AcceptedOut | JSONResponse:
    """Write one event or a list of events to the events topic (one message per model)."""
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
        return _invalid([{"loc": ["body"], "msg": "an empty list holds no event"}])
    errors: list[dict[str, Any]] = []
    by_model: dict[str, list[Any]] = defaultdict(list)
    for i, element in enumerate(elements):
        where = f"[{i}]." if batch else ""
        try:
            event = validate_event(element, where)
            if event.model not in node.registry.models:
                raise InvalidEvent(f"{where}model: unknown model {event.model!r}", f"{where}model")
        except InvalidEvent as exc:
            errors.append({"loc": ["body", *_loc(exc.field)], "msg": str(exc)})
            continue
        by_model[event.model].append(element)
    if errors:
        return _invalid(errors)
    for model, group in by_model.items():
        value = group[0] if len(group) == 1 else group
        await node.topics.events_topic.send(key=model.encode(), value=orjson.dumps(value))
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
