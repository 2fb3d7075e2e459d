"""Events and labels written to Kafka over HTTP, validated by the same rules as the agents."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Container, Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response, status

from app.deps import RegistryDep, SettingsDep, TopicsDep
from app.limits import unprocessable
from app.schemas import INVALID_RESPONSE, AcceptedOut
from streams.learning.errors import InvalidEvent
from streams.learning.events import Event, Label, validate_event, validate_label
from streams.learning.records import event_schema, label_schema
from streams.learning.registry import ModelRegistry
from streams.learning.templates import home


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI text for a body of one object or a non-empty list of them."""
    one_or_many = {"oneOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": one_or_many}}}
    }


def router_for(models: list[str]) -> APIRouter:
    """The events and labels routes of a node whose deployed models are ``models`` (kept
    up to date by the caller, as the registry changes): the body schema names them, as the
    routes refuse (422) an event for any other."""
    model = {"type": "string", "enum": models}
    router = APIRouter(tags=["events"], responses=INVALID_RESPONSE)
    router.add_api_route(
        "/events", create_events, methods=["POST"], status_code=status.HTTP_202_ACCEPTED,
        response_model=AcceptedOut, openapi_extra=_body(event_schema(model)),
    )  # fmt: skip
    router.add_api_route(
        "/labels", create_labels, methods=["POST"], status_code=status.HTTP_202_ACCEPTED,
        response_model=AcceptedOut, openapi_extra=_body(label_schema(model)),
    )  # fmt: skip
    return router


async def create_events(
    request: Request, settings: SettingsDep, registry: RegistryDep, topics: TopicsDep
) -> AcceptedOut | Response:
    """Write one event or a list of events to the events topic (a message per model, or
    several when the batch is over STREAMLEARN_MAX_EVENT_BYTES)."""
    return await _write(
        request, settings.max_event_bytes, _Accepted(registry), validate_event, topics.events_topic
    )


async def create_labels(
    request: Request, settings: SettingsDep, registry: RegistryDep, topics: TopicsDep
) -> AcceptedOut | Response:
    """Write labels for events seen earlier to the labels topic (a message per model, or
    several when the batch is over STREAMLEARN_MAX_EVENT_BYTES)."""
    return await _write(
        request, settings.max_event_bytes, _Accepted(registry), validate_label, topics.labels_topic
    )


class _Accepted:
    """The names an event may give: the registry's models and templates, as they are now."""

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.registry.accepts(name)


async def _write(
    request: Request,
    max_bytes: int,
    models: Container[str],
    validate: Callable[[Any, str], Event | Label],
    topic: Any,
) -> AcceptedOut | Response:
    raw = await request.body()  # at most STREAMLEARN_MAX_REQUEST_BYTES (app.limits.BodyLimit)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _invalid([{"loc": ["body"], "msg": f"body is not valid JSON: {exc}",
                          "type": "json_invalid"}])  # fmt: skip
    batch = isinstance(document, list)
    elements = document if batch else [document]
    if not elements:
        return _invalid([{"loc": ["body"], "msg": "an empty list holds nothing to write",
                          "type": "too_short"}])  # fmt: skip
    errors: list[dict[str, Any]] = []
    by_model: dict[str, list[bytes]] = defaultdict(list)
    for i, element in enumerate(elements):
        where, at = (f"[{i}].", [i]) if batch else ("", [])
        try:
            item = validate(element, where)
            if item.model not in models:
                raise InvalidEvent(f"{where}model: unknown model {item.model!r}", f"{where}model")
        except InvalidEvent as exc:
            loc = ["body", *at, *_loc(exc.field, where)]
            errors.append({"loc": loc, "msg": str(exc), "type": "value_error"})
            continue
        encoded = orjson.dumps(element)
        if len(encoded) > max_bytes:  # the agents would dead-letter it: refuse it here
            msg = f"{where}event is {len(encoded)} bytes, over the limit of {max_bytes} bytes"
            errors.append({"loc": ["body", *at], "msg": msg, "type": "too_long"})
            continue
        by_model[item.model].append(encoded)
    if errors:
        return _invalid(errors)
    for model, group in by_model.items():
        for message in to_messages(group, max_bytes):
            # Keyed by the model's home: a template's model lives in its template's partition.
            await topic.send(key=home(model).encode(), value=message)
    return AcceptedOut(accepted=len(elements))


def to_messages(encoded: list[bytes], max_bytes: int) -> Iterator[bytes]:
    """The encoded elements of one model as messages of at most ``max_bytes`` each, in order:
    an element alone, or a JSON array of several. The agents dead-letter a larger message
    whole, so a batch within STREAMLEARN_MAX_REQUEST_BYTES but over
    STREAMLEARN_MAX_EVENT_BYTES is cut, never lost (each element fits: see ``_write``).

    >>> list(to_messages([b'{"a":1}', b'{"b":2}', b'{"c":3}'], max_bytes=20))
    [b'[{"a":1},{"b":2}]', b'{"c":3}']
    """
    batch: list[bytes] = []
    size = 1  # "[", then each element with the "," or "]" after it
    for element in encoded:
        if batch and size + len(element) + 1 > max_bytes:
            yield batch[0] if len(batch) == 1 else b"[" + b",".join(batch) + b"]"
            batch, size = [], 1
        batch.append(element)
        size += len(element) + 1
    if batch:
        yield batch[0] if len(batch) == 1 else b"[" + b",".join(batch) + b"]"


def _loc(field: str | None, where: str) -> list[str | int]:
    """Where ``field`` of the element at ``where`` is, as ``loc`` names it: ``"[3].features.age"``
    -> ``["features", "age"]``; a feature's name is kept whole, dots, brackets and all. An
    element that is not an object (a label message names no field then) is all at fault."""
    if not field or field == where.rstrip("."):
        return []
    head, _, name = field.removeprefix(where).partition(".")
    return [head, name] if head == "features" and name else [field.removeprefix(where)]


def _invalid(errors: list[dict[str, Any]]) -> Response:
    """422 naming each field; a sentence may quote a field name or value the client sent,
    so each is cut short, and only the first errors are listed (see :mod:`app.limits`)."""
    return unprocessable(errors)
