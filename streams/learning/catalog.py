"""The model registry's records: every model's spec, version by version, as on the ``models``
topic, and what applying one of them changes.

The ``models`` topic is compacted and keyed by model name; each value is a
:class:`ModelRecord`: the current :class:`SpecVersion` and the versions before it, so that the
latest value of a key (all compaction keeps) still holds the model's whole history. A
tombstone (no value) retires the model. Every node reads the topic from its start and applies
each record, in order, to its :class:`Catalog`.

Examples
--------
>>> from streams.learning.spec import ModelSpec
>>> catalog = Catalog()
>>> spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
>>> record = catalog.propose(spec, who="9f86d081884c7d65", when="2026-11-26T17:00:00+00:00")
>>> catalog.apply("m", ModelRecord.decode("m", record.encode())).kind
'created'
>>> update = catalog.propose(spec.model_copy(update={"snapshot_every": 10}), None, "t")
>>> change = catalog.apply("m", update)
>>> change.kind, change.new.version, [v.version for v in catalog.history("m")]
('in_place', 2, [1, 2])
>>> catalog.apply("m", None).kind
'retired'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from streams.learning.changes import classify
from streams.learning.errors import InvalidSpec, SpecError
from streams.learning.spec import ModelSpec
from streams.learning.templates import Template, home, instance_key_ok, split_template

#: Versions a record keeps besides the current one (the oldest are dropped first).
HISTORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class SpecVersion:
    """One version of a model's spec: who wrote it and when, and from which offsets of its
    input partitions the model built for it learns (empty: from their start)."""

    version: int
    spec: ModelSpec
    who: str | None
    when: str
    offsets: dict[str, int] = field(default_factory=dict)
    #: The ``model_version`` the model built for this version starts with.
    model_version: int = 1
    #: Set for a template: the spec is that of the models it makes, one per key.
    template: Template | None = None

    def public(self) -> dict[str, Any]:
        """As the API shows it: the spec's fields as in the models file (without the name)."""
        return {
            "name": self.spec.name,
            "version": self.version,
            "spec": self.fields(),
            "who": self.who,
            "when": self.when,
        }

    def fields(self) -> dict[str, Any]:
        """The spec as a ``[models.NAME]`` table would give it, every default filled in (and
        a template's ``key_field`` and ``max_models``)."""
        fields = self.spec.model_dump(mode="json", exclude={"name"})
        return {**self.template.as_dict(), **fields} if self.template else fields

    def _wire(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "spec": self.fields(),
            "who": self.who,
            "when": self.when,
            "offsets": self.offsets,
            "model_version": self.model_version,
        }


def spec_from_fields(name: str, fields: Any) -> ModelSpec:
    """Validate ``fields`` (a ``[models.NAME]`` table, or the body of ``PUT /models/NAME``)
    exactly as the models file is; :class:`InvalidSpec` names the first field at fault.

    >>> spec_from_fields("m", {"task": "binary", "pipeline": "linear_model.LinearRegression()"})
    Traceback (most recent call last):
    ...
    streams.learning.errors.InvalidSpec: pipeline: a binary model needs a classifier, ...
    >>> spec_from_fields("a b", {}).name
    Traceback (most recent call last):
    ...
    streams.learning.errors.InvalidSpec: name: a model name is 1-64 letters, ...
    """
    if not isinstance(fields, dict):
        raise InvalidSpec(f"the spec of model {name!r} must be an object of its settings")
    if "name" in fields:
        raise InvalidSpec("name: a model is named by its path, /models/NAME", "name")
    if ":" in name and instance_key_ok(name):  # a template's model: named by its template
        return spec_from_fields(home(name), fields).model_copy(update={"name": name})
    try:
        return ModelSpec(name=name, **fields)
    except ValidationError as exc:
        errors = exc.errors()
        # The name first: a spec for a name that is not allowed is refused for that alone.
        first = next((e for e in errors if e["loc"] == ("name",)), errors[0])
        message = str(first["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in first["loc"])
        if not where:  # a check across fields names its field first: "pipeline: ..."
            head = message.split(":", 1)[0]
            where = head if head.split(".")[0] in ModelSpec.model_fields else ""
            message = message.removeprefix(f"{where}: ") if where else message
        raise InvalidSpec(f"{where}: {message}" if where else message, where or None) from None


def version_from_fields(name: str, fields: Any) -> tuple[ModelSpec, Template | None]:
    """A model's spec, or a template's (the spec of its models, and its ``key_field`` and
    ``max_models``), validated; :class:`InvalidSpec` names the field at fault.

    >>> spec, template = version_from_fields("fraud", {"key_field": "merchant",
    ...     "task": "binary", "pipeline": "linear_model.LogisticRegression()"})
    >>> spec.name, template
    ('fraud', Template(key_field='merchant', max_models=1000))
    >>> version_from_fields("fraud", {"max_models": 5, "task": "binary",
    ...     "pipeline": "linear_model.LogisticRegression()"})
    Traceback (most recent call last):
    ...
    streams.learning.errors.InvalidSpec: key_field: a template needs the feature ...
    """
    if not isinstance(fields, dict):
        raise InvalidSpec(f"the spec of model {name!r} must be an object of its settings")
    rest, template = split_template(fields)
    if template is not None and ":" in name:
        raise InvalidSpec("name: a template's model cannot be a template itself", "name")
    return spec_from_fields(name, rest), template


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """The value of a model's key on the ``models`` topic."""

    current: SpecVersion
    history: tuple[SpecVersion, ...] = ()

    @property
    def name(self) -> str:
        return self.current.spec.name

    def versions(self) -> list[SpecVersion]:
        """Every version kept, the oldest first."""
        return [*self.history, self.current]

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "name": self.name,
                **self.current._wire(),
                "history": [v._wire() for v in self.history],
            }
        )

    @classmethod
    def decode(cls, name: str, raw: bytes) -> ModelRecord:
        """The record of model ``name`` read from the topic; :class:`SpecError` when it is not
        one (written by something else, or a spec this version of streamlearn refuses)."""
        try:
            document = orjson.loads(raw)
            if document.get("name") != name:
                raise SpecError(f"the record keyed {name!r} names {document.get('name')!r}")
            versions = [_version(name, item) for item in [*document["history"], document]]
        except SpecError:
            raise
        except (ValueError, OverflowError, AttributeError, KeyError, TypeError) as exc:
            raise SpecError(f"unreadable record of model {name!r}: {exc!r}"[:500]) from None
        return cls(versions[-1], tuple(versions[:-1]))


def _version(name: str, item: dict[str, Any]) -> SpecVersion:
    spec, template = version_from_fields(name, item["spec"])
    return SpecVersion(
        template=template,
        version=int(item["version"]),
        spec=spec,
        who=item.get("who"),
        when=str(item.get("when", "")),
        offsets={str(k): int(v) for k, v in (item.get("offsets") or {}).items()},
        model_version=int(item.get("model_version", 1)),
    )


ChangeKind = Literal["created", "rebuilt", "in_place", "unchanged", "retired", "unknown"]


@dataclass(frozen=True, slots=True)
class Change:
    """What applying a record did: ``old`` and ``new`` are the versions before and after."""

    kind: ChangeKind
    name: str
    old: SpecVersion | None = None
    new: SpecVersion | None = None


class Catalog:
    """The registry as this node has read it: the current record of every model."""

    def __init__(self) -> None:
        self.records: dict[str, ModelRecord] = {}
        #: Histories of retired models, so that a model deployed again continues its numbering.
        self._retired: dict[str, ModelRecord] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.records

    def names(self) -> list[str]:
        return sorted(self.records)

    def current(self, name: str) -> SpecVersion | None:
        record = self.records.get(name)
        return record.current if record is not None else None

    def history(self, name: str) -> list[SpecVersion]:
        record = self.records.get(name)
        return record.versions() if record is not None else []

    def specs(self) -> dict[str, ModelSpec]:
        """The spec of every model (templates left out)."""
        return {
            name: record.current.spec
            for name, record in self.records.items()
            if record.current.template is None
        }

    def templates(self) -> dict[str, SpecVersion]:
        """The current version of every template."""
        return {
            name: record.current
            for name, record in self.records.items()
            if record.current.template is not None
        }

    def propose(
        self,
        spec: ModelSpec,
        who: str | None,
        when: str,
        offsets: dict[str, int] | None = None,
        model_version: int = 1,
        template: Template | None = None,
    ) -> ModelRecord:
        """The record that makes ``spec`` the next version of its model, built at ``offsets``
        of its input partitions with ``model_version``."""
        before = self.records.get(spec.name) or self._retired.get(spec.name)
        versions = before.versions() if before is not None else []
        number = versions[-1].version + 1 if versions else 1
        current = SpecVersion(number, spec, who, when, dict(offsets or {}), model_version, template)
        return ModelRecord(current, tuple(versions[-HISTORY_LIMIT:]))

    def apply(self, name: str, record: ModelRecord | None) -> Change:
        """Make ``record`` (``None``: a tombstone) the current one of ``name``."""
        before = self.records.get(name)
        old = before.current if before is not None else None
        if record is None:
            if before is None:
                return Change("unknown", name)
            self._retired[name] = self.records.pop(name)
            return Change("retired", name, old)
        if old is not None and record.current.version <= old.version:
            return Change("unchanged", name, old, old)  # already applied (our own write)
        self.records[name] = record
        self._retired.pop(name, None)
        if old is None:
            return Change("created", name, None, record.current)
        kind = classify(old.spec, record.current.spec)
        if kind == "unchanged" and old.template != record.current.template:
            kind = "in_place"  # for the models the template makes from now on
        return Change("rebuilt" if kind == "rebuild" else kind, name, old, record.current)


def load_templates(path: Path) -> dict[str, tuple[ModelSpec, Template]]:
    """Every ``[templates.NAME]`` table of a models file (read already by
    :func:`~streams.learning.spec.load_specs`), validated; :class:`SpecError` names the file,
    the template and the field at fault."""
    tables = tomllib.loads(path.read_text(encoding="utf-8")).get("templates", {})
    if not isinstance(tables, dict):
        raise SpecError(f"{path}: templates must be tables, [templates.NAME]")
    out = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise SpecError(f"{path}: templates.{name} must be a table")
        if ":" in name:
            raise SpecError(f"{path}: templates.{name}: ':' is not allowed in a template's name")
        if "key_field" not in table:
            raise SpecError(
                f"{path}: templates.{name}.key_field: a template needs the feature its models"
                " are keyed by"
            )
        try:
            spec, template = version_from_fields(name, table)
        except InvalidSpec as exc:
            raise SpecError(f"{path}: templates.{name}.{exc}") from None
        assert template is not None  # it has a key_field
        out[name] = (spec, template)
    return out
