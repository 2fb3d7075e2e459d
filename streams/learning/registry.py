"""The models of a node, and the per-message steps the agents delegate to.

Examples
--------
>>> from streams.learning.model import Limits
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
>>> registry = ModelRegistry({"m": spec}, Limits(), max_event_bytes=1024)
>>> raw = b'[{"event_id": "1", "model": "m", "features": {"x": 2}, "label": 4.0}, 7]'
>>> out = registry.handle_events(raw, topic="events", partition=0, offset=5, now=0.0)
>>> len(out.predictions), out.dead_letters[0]["error"]
(1, '[1].event must be a JSON object, got a number')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.learning.errors import InvalidEvent, UnknownModel
from streams.learning.events import Event, Label, decode_events, decode_labels
from streams.learning.model import Limits, OnlineModel, Step
from streams.learning.spec import ModelSpec

#: Dead letters keep at most this much of the original payload.
PAYLOAD_LIMIT = 64 * 1024


@dataclass(slots=True)
class Outcome:
    """What one input message produced: predictions, drift detections and dead letters."""

    predictions: list[dict[str, Any]] = field(default_factory=list)
    detections: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


class ModelRegistry:
    """Every model declared for this node, by name."""

    def __init__(
        self, specs: dict[str, ModelSpec], limits: Limits, *, max_event_bytes: int
    ) -> None:
        self.models = {name: OnlineModel(spec, limits) for name, spec in specs.items()}
        self.max_event_bytes = max_event_bytes
        self.n_dead_letters = 0

    def get(self, name: str) -> OnlineModel:
        """The model called ``name``, or :class:`UnknownModel`."""
        try:
            return self.models[name]
        except KeyError:
            raise UnknownModel(name) from None

    def __iter__(self) -> Iterator[OnlineModel]:
        return iter(self.models.values())

    def handle_events(
        self, raw: bytes, *, topic: str, partition: int, offset: int, now: float
    ) -> Outcome:
        """Decode one ``events`` message and run each valid event through its model."""

        def step(model: OnlineModel, event: Event) -> Step:
            return model.process(event, now)

        return self._handle(
            decode_events(raw, self.max_event_bytes), step, raw, topic, partition, offset
        )

    def handle_labels(
        self, raw: bytes, *, topic: str, partition: int, offset: int, now: float
    ) -> Outcome:
        """Decode one ``labels`` message and complete each pending prediction it names."""

        def step(model: OnlineModel, label: Label) -> Step:
            return model.process_label(label, now)

        return self._handle(
            decode_labels(raw, self.max_event_bytes), step, raw, topic, partition, offset
        )

    def _handle(
        self,
        items: list[Any],
        step: Callable[[OnlineModel, Any], Step],
        raw: bytes,
        topic: str,
        partition: int,
        offset: int,
    ) -> Outcome:
        outcome = Outcome()
        for item in items:
            if isinstance(item, InvalidEvent):
                named = self.models.get(item.model) if item.model else None
                self._dead_letter(outcome, item, named, raw, (topic, partition, offset))
                continue
            model = self.models.get(item.model)
            if model is None:
                error = InvalidEvent(f"unknown model {item.model!r}", "model")
                self._dead_letter(outcome, error, None, raw, (topic, partition, offset))
                continue
            try:
                result = step(model, item)
            except InvalidEvent as exc:
                self._dead_letter(outcome, exc, model, raw, (topic, partition, offset))
                continue
            if result.record is not None:
                outcome.predictions.append(result.record)
            for d in result.detections:
                outcome.detections.append(
                    {"model": model.name, "ts": d.at.isoformat(), "detector": d.detector,
                     "input": d.input, "n_learned": d.n_learned, "detail": d.detail}
                )  # fmt: skip
        return outcome

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
            model.n_dead_letters += 1
        topic, partition, offset = where
        outcome.dead_letters.append(
            {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "error": str(error),
                "payload": raw[:PAYLOAD_LIMIT].decode("utf-8", errors="replace"),
            }
        )
