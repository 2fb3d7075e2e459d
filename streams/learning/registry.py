"""The models of a node, and the per-message learning step the events agent delegates to.

Examples
--------
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
>>> registry = ModelRegistry({"m": spec}, dedupe_size=10, dedupe_seconds=60, max_event_bytes=1024)
>>> raw = b'[{"event_id": "1", "model": "m", "features": {"x": 2}, "label": 4.0}, 7]'
>>> out = registry.handle_events(raw, topic="events", partition=0, offset=5, now=0.0)
>>> len(out.predictions), out.dead_letters[0]["error"]
(1, '[1].event must be a JSON object, got a number')
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.learning.errors import InvalidEvent, UnknownModel
from streams.learning.events import decode_events
from streams.learning.model import OnlineModel
from streams.learning.spec import ModelSpec

#: Dead letters keep at most this much of the original payload.
PAYLOAD_LIMIT = 64 * 1024


@dataclass(slots=True)
class Outcome:
    """What one input message produced: predictions to publish and dead letters."""

    predictions: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)


class ModelRegistry:
    """Every model declared for this node, by name."""

    def __init__(
        self,
        specs: dict[str, ModelSpec],
        *,
        dedupe_size: int,
        dedupe_seconds: float,
        max_event_bytes: int,
    ) -> None:
        self.models = {
            name: OnlineModel(spec, dedupe_size=dedupe_size, dedupe_seconds=dedupe_seconds)
            for name, spec in specs.items()
        }
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
        outcome = Outcome()
        for item in decode_events(raw, self.max_event_bytes):
            if isinstance(item, InvalidEvent):
                named = self.models.get(item.model) if item.model else None
                self._dead_letter(outcome, item, named, raw, topic, partition, offset)
                continue
            model = self.models.get(item.model)
            if model is None:
                error = InvalidEvent(f"unknown model {item.model!r}", "model")
                self._dead_letter(outcome, error, None, raw, topic, partition, offset)
                continue
            try:
                record = model.process(item, now)
            except InvalidEvent as exc:
                self._dead_letter(outcome, exc, model, raw, topic, partition, offset)
                continue
            if record is not None:
                outcome.predictions.append(record)
        return outcome

    def _dead_letter(
        self,
        outcome: Outcome,
        error: InvalidEvent,
        model: OnlineModel | None,
        raw: bytes,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        self.n_dead_letters += 1
        if model is not None:
            model.n_dead_letters += 1
        outcome.dead_letters.append(
            {
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "error": str(error),
                "payload": raw[:PAYLOAD_LIMIT].decode("utf-8", errors="replace"),
            }
        )
