"""Who owns which model in the consumer group: read from Faust's partition assignor.

Kafka's consumer group gives every partition of ``events`` one owner, and Faust's assignor
hands every member the URL of every other member with the partitions it holds (its
``external_topics_metadata``). A model's owner is the owner of its partition; ``labels`` is
co-partitioned with ``events`` (same partition count, subscribed by the same members), so
the same node holds both halves of a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.learning.partitioning import tp_key
from streams.learning.registry import ModelRegistry


@dataclass(frozen=True, slots=True)
class PartitionState:
    """One input partition held by this node, and how far behind its learning is."""

    topic: str
    partition: int
    highwater: int | None
    position: int | None

    @property
    def lag(self) -> int | None:
        """Messages on the partition not handled yet (``None`` before the first fetch)."""
        if self.highwater is None or self.position is None:
            return None
        return max(0, self.highwater - self.position)


class Ownership:
    """The group's partition owners, as this node's Faust app last heard them."""

    def __init__(self, app: Any, registry: ModelRegistry, url: str) -> None:
        self.app = app
        self.registry = registry
        self.url = url

    def _distribution(self) -> Mapping[str, Mapping[str, list[int]]]:
        distribution: Mapping[str, Mapping[str, list[int]]] = (
            self.app.assignor.external_topics_metadata() or {}
        )
        return distribution

    def owner_of(self, name: str) -> str | None:
        """URL of the node that holds ``name``'s partition, or ``None`` while nobody does."""
        events = self.registry.input_topics[0]
        partition = self.registry.partition_of(name)
        for url, topics in self._distribution().items():
            if partition in topics.get(events, ()):
                return url
        return None

    def members(self) -> list[str]:
        """URLs of every node in the group (this one included), sorted."""
        return sorted(set(self._distribution()) | {self.url})

    def partitions(self) -> list[PartitionState]:
        """The input partitions this node holds, with their lag."""
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return []
        states = []
        for tp in sorted(consumer.assignment()):
            if tp.topic not in self.registry.input_topics:
                continue
            position = self.registry.positions.get(tp_key(tp.topic, tp.partition))
            highwater = _highwater(consumer, tp)
            states.append(PartitionState(tp.topic, tp.partition, highwater, position))
        return states


def _highwater(consumer: Any, tp: Any) -> int | None:
    try:
        value = consumer.highwater(tp)
    except (AssertionError, KeyError, AttributeError):  # not fetched yet, or not started
        return None
    return int(value) if value is not None else None
