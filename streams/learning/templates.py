"""Models per key: a template makes model ``<template>:<key>`` on the first event for a key.

A template is a spec with a ``key_field`` (and ``max_models``, 1,000 by default): an event
for ``"model": "fraud"`` whose features hold ``"merchant": "acme"`` is learned by model
``fraud:acme``, made from the template's spec on the first such event. Keys are strings or
integers of 1-64 letters, digits, ``_``, ``-`` or ``.`` (so model names stay within what a
path and a Prometheus label carry); past ``max_models`` models, an event for a new key is
dead-lettered with the reason. A model of a template lives in the template's partition (its
events arrive keyed by the template's name), so the part of a name before ``:`` decides where
a model lives.

Examples
--------
>>> template = Template("merchant", max_models=2)
>>> template.instance_name("fraud", {"merchant": "acme", "amount": 3.0})
'fraud:acme'
>>> template.instance_name("fraud", {"amount": 3.0})
Traceback (most recent call last):
...
streams.learning.errors.InvalidEvent: model 'fraud' is a template keyed by features.merchant, ...
>>> home("fraud:acme"), home("phishing")
('fraud', 'phishing')
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from streams.learning.errors import InvalidEvent, InvalidSpec
from streams.learning.spec import ModelSpec

_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
#: The fields of a template besides those of a model spec.
TEMPLATE_FIELDS = ("key_field", "max_models")
MAX_MODELS = 100_000


@dataclass(frozen=True, slots=True)
class Template:
    """Which feature keys the models of a template, and how many it may make."""

    key_field: str
    max_models: int = 1_000

    def instance_name(self, template: str, features: dict[str, Any]) -> str:
        """The model an event's ``features`` belong to, or :class:`InvalidEvent`."""
        value = features.get(self.key_field)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _KEY.match(value):
            got = "missing" if value is None else f"{value!r}"[:80]
            raise InvalidEvent(
                f"model {template!r} is a template keyed by features.{self.key_field}, which"
                f" must be a string or an integer of 1-64 letters, digits, '_', '-' or '.'"
                f" (got {got})",
                f"features.{self.key_field}",
                template,
            )
        return f"{template}:{value}"

    def as_dict(self) -> dict[str, Any]:
        return {"key_field": self.key_field, "max_models": self.max_models}


def instance_for(
    item: Any, spec: ModelSpec, template: Template, models: Collection[str]
) -> tuple[str, ModelSpec | None]:
    """The model an event (or label) ``item`` for a template belongs to, and the spec to make
    it with when it is not among ``models`` yet; :class:`InvalidEvent` when no model can take
    it (a label, which names its model itself; no key; past ``max_models``)."""
    features = getattr(item, "features", None)
    if features is None:
        raise InvalidEvent(
            f"model {item.model!r} is a template: a label names the model of its event,"
            f" {item.model}:<{template.key_field}>",
            "model",
            item.model,
        )
    name = template.instance_name(item.model, features)
    if name in models:
        return name, None
    prefix = f"{item.model}:"
    if sum(1 for made in models if made.startswith(prefix)) >= template.max_models:
        raise InvalidEvent(
            f"template {item.model!r} has made max_models = {template.max_models} models"
            f" already: no model {name!r} is made for this event",
            "model",
            item.model,
        )
    return name, spec.model_copy(update={"name": name})


def without_key(item: Any, template: Template) -> Any:
    """``item`` (an event) without its key among the features: every event of a template's
    model has the same key, which tells the model nothing."""
    if template.key_field not in getattr(item, "features", ()):
        return item
    features = {k: v for k, v in item.features.items() if k != template.key_field}
    return dataclasses.replace(item, features=features)


def home(name: str) -> str:
    """The name whose partition holds model ``name``: a template's, for one of its models."""
    return name.split(":", 1)[0]


def split_template(fields: dict[str, Any]) -> tuple[dict[str, Any], Template | None]:
    """The model spec's fields, and the template when ``fields`` declare one (a
    ``key_field``); :class:`InvalidSpec` names the field at fault."""
    if not any(name in fields for name in TEMPLATE_FIELDS):
        return fields, None
    rest = {k: v for k, v in fields.items() if k not in TEMPLATE_FIELDS}
    key_field = fields.get("key_field")
    if key_field is None:
        raise InvalidSpec(
            "key_field: a template needs the feature its models are keyed by", "key_field"
        )
    if not isinstance(key_field, str) or not 1 <= len(key_field) <= 256:
        raise InvalidSpec("key_field: a feature name of 1-256 characters", "key_field")
    count = fields.get("max_models", 1_000)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_MODELS:
        raise InvalidSpec(f"max_models: an integer from 1 to {MAX_MODELS}", "max_models")
    return rest, Template(key_field, count)


def instance_key_ok(name: str) -> bool:
    """``name`` is ``<template>:<key>`` with a key as :meth:`Template.instance_name` makes."""
    _, sep, key = name.partition(":")
    return bool(sep) and _KEY.match(key) is not None
