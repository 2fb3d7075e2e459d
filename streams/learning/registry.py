"""The models of a node, and the per-message steps the agents delegate to.

Examples
--------
>>> from streams.learning.model import Limits
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
>>> registry = ModelRegistry({"m": spec}, Limits(), max_event_bytes=1024)
>>> raw = b'[{"event_id": "1", "model": "m", "features": {"x": 2}, "label": 4.0}, 7]'
>>> out = registry.handle_events(raw, topic="events", partition=0, offset=5, now=0.0)
>>> len(out.predictions), out.dead_letters[0].error
(1, '[1].event must be a JSON object, got a number')
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.learning.errors import InvalidEvent, UnknownModel
from streams.learning.events import Event, Label, decode_events, decode_labels
from streams.learning.journal import Journal
from streams.learning.model import Limits, OnlineModel, Step
from streams.learning.partitioning import partition_for, tp_key
from streams.learning.records import DeadLetter, DriftDetected, Prediction, Promotion, Reroute
from streams.learning.spec import ModelSpec
from streams.learning.templates import Template, home, instance_for, without_key

logger = logging.getLogger(__name__)

#: A message that is a JSON array (a batch): its first byte after any whitespace is "[".
_ARRAY = re.compile(rb"\s*\[")

#: Dead letters keep at most this much of the original payload, and of the error sentence.
PAYLOAD_LIMIT = 64 * 1024
ERROR_LIMIT = 2_000


@dataclass(slots=True)
class Outcome:
    """What one input message produced: predictions, drift detections and dead letters."""

    predictions: list[Prediction] = field(default_factory=list)
    detections: list[DriftDetected] = field(default_factory=list)
    promotions: list[Promotion] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: Valid elements that arrived on another partition than their model's, to be moved.
    reroutes: list[Reroute] = field(default_factory=list)
    #: Models that have learned ``snapshot_every`` events since their last snapshot.
    snapshot_due: list[OnlineModel] = field(default_factory=list)
    #: Models a template made for a new key (see :mod:`streams.learning.templates`).
    created: list[OnlineModel] = field(default_factory=list)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _misplaced_again(name: str, partition: int, registry: ModelRegistry) -> InvalidEvent:
    """The dead-letter sentence of a moved copy that arrived misplaced again: the nodes count
    different partitions, and moving it once more would send it round."""
    expected = registry.partition_of(name)
    return InvalidEvent(
        f"an event of model {name!r} was moved to partition {partition}, but this node learns"
        f" model {name!r} from partition {expected} of {registry.partitions}: the nodes of the"
        " group disagree on STREAMLEARN_TOPIC_PARTITIONS",
        "model",
    )


def _model_error(model: OnlineModel, item: Event | Label, exc: Exception) -> InvalidEvent:
    """The dead-letter sentence of an event its model raised on (and was rewound from)."""
    doing = "learning from" if getattr(item, "has_label", True) else "predicting"
    return InvalidEvent(
        f"model {model.name!r} ({model.guard.capabilities.name}) raised {type(exc).__name__}"
        f" {doing} event {item.event_id!r}: {exc}; the model was left as it was before"
        " this event, and its neighbours were learned",
        "features",
        model.name,
    )


def _located(error: InvalidEvent, index: int, raw: bytes) -> InvalidEvent:
    """The error of an element of message ``raw``: when ``raw`` is a batch, its sentence and
    field start with ``[index].`` as the decoder's do."""
    if _ARRAY.match(raw) is None:  # looked at only here: an error is rare, a message is not
        return error
    field = f"[{index}].{error.field}" if error.field else f"[{index}]"
    return InvalidEvent(f"[{index}].{error}", field, error.model)


def _reroutes(
    raw: bytes, n_items: int, moves: dict[int, list[tuple[int, str]]], source: str
) -> list[Reroute]:
    """The copies that move a message's misplaced elements to their models' partitions: the
    message itself when all of it goes to one partition, else one message per partition with
    its elements (an object for one, an array for several), in their order."""
    if len(moves) == 1:
        ((target, elements),) = moves.items()
        if len(elements) == n_items:
            return [Reroute(target, elements[0][1].encode(), raw, source)]
    document = orjson.loads(raw)  # an array: a lone object has one element, moved whole above
    out = []
    for target, elements in moves.items():
        parts = [document[i] for i, _ in elements]
        value = orjson.dumps(parts[0] if len(parts) == 1 else parts)
        out.append(Reroute(target, elements[0][1].encode(), value, source))
    return out


def _last(steps: Iterator[Outcome | None]) -> Outcome:
    """Run a sliced handling to its end."""
    outcome = Outcome()
    for step in steps:
        if step is not None:
            outcome = step
    return outcome


class ModelRegistry:
    """Every model declared for this node, by name."""

    def __init__(
        self,
        specs: dict[str, ModelSpec],
        limits: Limits,
        *,
        max_event_bytes: int,
        input_topics: tuple[str, str] = ("events", "labels"),
        partitions: int = 1,
    ) -> None:
        self.models = {name: OnlineModel(spec, limits) for name, spec in specs.items()}
        self.limits = limits
        self.max_event_bytes = max_event_bytes
        self.input_topics = input_topics
        self.partitions = partitions
        # Hashed once: the partition of a model is checked for every event.
        self._partition = {name: partition_for(home(name), partitions) for name in specs}
        #: Templates by name: each makes a model per key, on the first event for the key.
        self.templates: dict[str, tuple[ModelSpec, Template]] = {}
        self.n_dead_letters = 0
        #: Elements this node moved to their model's partition.
        self.n_rerouted = 0
        #: One journal per model, so that a step River raises in leaves the model as it was.
        self._journals: dict[str, Journal] = {}
        #: Next offset to read per ``topic:partition``, for every message handled here.
        self.positions: dict[str, int] = {}

    def partition_of(self, name: str) -> int:
        """The partition of the input topics that carries model ``name``."""
        known = self._partition.get(name)
        return known if known is not None else partition_for(home(name), self.partitions)

    def models_on(self, partition: int) -> list[OnlineModel]:
        """The models whose events and labels land in ``partition``."""
        return [m for m in self.models.values() if self.partition_of(m.name) == partition]

    def offsets_for(self, model: OnlineModel) -> dict[str, int]:
        """Where ``model`` would resume on each of its input partitions."""
        p = self.partition_of(model.name)
        keys = [tp_key(topic, p) for topic in self.input_topics]
        return {k: max(self.positions.get(k, 0), model.offsets.get(k, 0)) for k in keys}

    def release(self, partition: int) -> list[str]:
        """Forget the models of ``partition`` (it moved to another node): fresh instances,
        and no resume position of this node's for that partition."""
        names = [m.name for m in self.models_on(partition)]
        for name in names:
            self.reset_model(name)
        for topic in self.input_topics:
            self.positions.pop(tp_key(topic, partition), None)
        return names

    def reset_model(self, name: str) -> OnlineModel:
        """Replace ``name`` by a fresh model of the same spec (before a restore)."""
        model = OnlineModel(self.models[name].spec, self.limits)
        self.models[name] = model
        self.forget(name)
        return model

    def deploy(self, spec: ModelSpec) -> OnlineModel:
        """Add model ``spec.name``, or replace it by a fresh one of ``spec`` (the registry
        on the models topic changed it)."""
        model = OnlineModel(spec, self.limits)
        self.models[spec.name] = model
        self._partition[spec.name] = partition_for(home(spec.name), self.partitions)
        self.forget(spec.name)
        return model

    def accepts(self, name: str) -> bool:
        """Events may name ``name``: a model, or a template."""
        return name in self.models or name in self.templates

    def _made_by_template(
        self, item: Event | Label, key: str, offset: int
    ) -> tuple[OnlineModel, bool]:
        """The model of ``item``'s key, and whether it was made now (the first event for the
        key: it learns from this message on); :class:`InvalidEvent` when none can take it."""
        name, spec = instance_for(item, *self.templates[item.model], self.models)
        if spec is None:
            return self.models[name], False
        model = self.deploy(spec)
        model.offsets = {key: offset}
        return model, True

    def retire(self, name: str) -> None:
        """Forget model ``name``: its events are dead-lettered as of an unknown model."""
        self.models.pop(name, None)
        self._partition.pop(name, None)
        self.forget(name)

    def forget(self, name: str) -> None:
        """Model ``name`` was changed outside its steps (restored, promoted by an admin): its
        journal starts again from the state it has now."""
        self._journals.pop(name, None)

    def get(self, name: str) -> OnlineModel:
        """The model called ``name``, or :class:`UnknownModel`."""
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(name) from None

    def __iter__(self) -> Iterator[OnlineModel]:
        return iter(self.models.values())

    def handle_events(
        self, raw: bytes, *, topic: str, partition: int, offset: int, now: float,
        rerouted: bool = False,
    ) -> Outcome:  # fmt: skip
        """Decode one ``events`` message and run each valid event through its model.

        Valid events of a model learned from another partition are not learned here: they
        come back in :attr:`Outcome.reroutes`, to be written to that partition. A message
        that is such a copy (``rerouted``) is counted by its models, and never moved again.
        """
        return _last(self.iter_events(raw, topic=topic, partition=partition, offset=offset,
                                      now=now, rerouted=rerouted))  # fmt: skip

    def handle_labels(
        self, raw: bytes, *, topic: str, partition: int, offset: int, now: float,
        rerouted: bool = False,
    ) -> Outcome:  # fmt: skip
        """Decode one ``labels`` message and complete each pending prediction it names; labels
        on another partition than their model's are moved as events are."""
        return _last(self.iter_labels(raw, topic=topic, partition=partition, offset=offset,
                                      now=now, rerouted=rerouted))  # fmt: skip

    def iter_events(
        self, raw: bytes, *, topic: str, partition: int, offset: int, now: float,
        slice_seconds: float = float("inf"), slice_started: float | None = None,
        rerouted: bool = False,
    ) -> Iterator[Outcome | None]:  # fmt: skip
        """:meth:`handle_events` in slices: ``None`` is yielded each time ``slice_seconds`` of
        work have passed (so a caller can let others run), and the outcome at the end. The
        first slice began at ``slice_started`` (a ``time.perf_counter()``; now if None), so
        that a caller's slice can span several messages; each later one is a whole slice."""

        def step(model: OnlineModel, event: Event) -> Step:
            return model.process(event, now)

        items = decode_events(raw, self.max_event_bytes)
        return self._handle(items, step, raw, (topic, partition, offset),
                            (slice_seconds, slice_started), rerouted)  # fmt: skip

    def iter_labels(
        self, raw: bytes, *, topic: str, partition: int, offset: int, now: float,
        slice_seconds: float = float("inf"), slice_started: float | None = None,
        rerouted: bool = False,
    ) -> Iterator[Outcome | None]:  # fmt: skip
        """:meth:`handle_labels` in slices, as :meth:`iter_events`."""

        def step(model: OnlineModel, label: Label) -> Step:
            return model.process_label(label, now)

        items = decode_labels(raw, self.max_event_bytes)
        return self._handle(items, step, raw, (topic, partition, offset),
                            (slice_seconds, slice_started), rerouted)  # fmt: skip

    def _handle(
        self,
        items: list[Any],
        step: Callable[[OnlineModel, Any], Step],
        raw: bytes,
        where: tuple[str, int, int],
        slicing: tuple[float, float | None],
        rerouted: bool,
    ) -> Iterator[Outcome | None]:
        outcome = Outcome()
        topic, partition, offset = where
        key = tp_key(topic, partition)
        slice_seconds, started = slicing
        since = time.perf_counter() if started is None else started
        sliced = slice_seconds != float("inf")
        models, journals = self.models, self._journals
        #: Elements to move, by the partition of their model: (index, model name).
        moves: dict[int, list[tuple[int, str]]] = {}
        for i, item in enumerate(items):
            if sliced and time.perf_counter() - since >= slice_seconds:
                yield None
                since = time.perf_counter()
            if isinstance(item, InvalidEvent):
                named = models.get(item.model) if item.model else None
                self._dead_letter(outcome, item, named, raw, where)
                continue
            model = models.get(item.model)
            if model is None and item.model in self.templates:
                if partition != self.partition_of(item.model):
                    if not rerouted:
                        moves.setdefault(self.partition_of(item.model), []).append((i, item.model))
                        continue
                else:
                    try:
                        model, made = self._made_by_template(item, key, offset)
                    except InvalidEvent as exc:
                        self._dead_letter(outcome, _located(exc, i, raw), None, raw, where)
                        continue
                    if made:
                        outcome.created.append(model)
                    item = without_key(item, self.templates[item.model][1])
            if model is None:
                error = InvalidEvent(f"unknown model {item.model!r}", "model")
                self._dead_letter(outcome, error, None, raw, where)
                continue
            target = self.partition_of(model.name)
            if partition != target:
                if rerouted:
                    error = _located(_misplaced_again(model.name, partition, self), i, raw)
                    self._dead_letter(outcome, error, model, raw, where)
                else:
                    moves.setdefault(target, []).append((i, model.name))
                continue
            if offset < model.offsets.get(key, 0):  # its snapshot already holds this message
                continue
            if rerouted:
                model.counters.n_rerouted += 1
            journal = journals.get(model.name)
            if journal is None:
                journal = journals[model.name] = Journal()
            try:
                result = journal.run(model, step, item)
            except InvalidEvent as exc:
                self._dead_letter(outcome, _located(exc, i, raw), model, raw, where)
                continue
            except Exception as exc:  # River raised inside; the journal rewound the model
                model.counters.n_model_errors += 1
                logger.warning(
                    "model %s raised %s on %s:%d@%d; rewound and dead-lettered",
                    model.name, type(exc).__name__, topic, partition, offset,
                    extra={"model": model.name, "event_id": item.event_id, "topic": topic,
                           "partition": partition, "offset": offset},
                )  # fmt: skip
                error = _located(_model_error(model, item, exc), i, raw)
                self._dead_letter(outcome, error, model, raw, where)
                continue
            if result.record is not None:
                outcome.predictions.append(result.record)
            if result.detections:
                for d in result.detections:
                    outcome.detections.append(DriftDetected(
                        model.name, d.at.isoformat(), d.detector, d.input, d.n_learned, d.detail
                    ))  # fmt: skip
            if result.promotions:
                outcome.promotions += result.promotions
            if (
                result.promotions
                or model.counters.n_learned - model.n_learned_at_snapshot
                >= model.spec.snapshot_every
            ) and model not in outcome.snapshot_due:
                outcome.snapshot_due.append(model)
        if moves:
            outcome.reroutes = _reroutes(raw, len(items), moves, f"{topic}:{partition}:{offset}")
            self.n_rerouted += sum(len(elements) for elements in moves.values())
        self.positions[key] = offset + 1
        yield outcome

    def _dead_letter(
        self,
        outcome: Outcome,
        error: InvalidEvent,
        model: OnlineModel | None,
        raw: bytes,
        where: tuple[str, int, int],
    ) -> None:
        self.n_dead_letters += 1
        if model is not None:
            model.counters.n_dead_letters += 1
        topic, partition, offset = where
        outcome.dead_letters.append(
            DeadLetter(
                topic,
                partition,
                offset,
                _cut(str(error), ERROR_LIMIT),
                raw[:PAYLOAD_LIMIT].decode("utf-8", errors="replace"),
                model.name if model is not None else None,
            )
        )
