"""This node's place in its consumer group: who owns which model, and what it holds itself.

Kafka's consumer group gives every partition of ``events`` one owner, and Faust's assignor
hands every member the URL of every other member with the partitions it holds (read through
:class:`streams.cluster.Cluster`). A model's owner is the owner of its partition; ``labels``
is co-partitioned with ``events`` (same partition count, subscribed by the same members), so
the same node holds both halves of a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.cluster import Cluster
from streams.learning.partitioning import tp_key
from streams.learning.registry import ModelRegistry
from streams.rebalance import Lifecycle


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
    """The group's partition owners, as this node last heard them, and the models live here."""

    def __init__(self, cluster: Cluster, registry: ModelRegistry, lifecycle: Lifecycle) -> None:
        self.cluster = cluster
        self.registry = registry
        self.lifecycle = lifecycle

    @property
    def url(self) -> str:
        """The URL the group knows this node by."""
        return self.cluster.url

    def is_live(self, name: str) -> bool:
        """The model is live here: this node holds its partition and has restored it."""
        return name in self.lifecycle.live

    def live(self) -> list[str]:
        """The models live here, sorted."""
        return sorted(self.lifecycle.live)

    def owner_of(self, name: str) -> str | None:
        """URL of the node that holds ``name``'s partition, or ``None`` while nobody does."""
        events = self.registry.input_topics[0]
        partition = self.registry.partition_of(name)
        for url, topics in self.cluster.distribution().items():
            if partition in topics.get(events, ()):
                return url
        return None

    def members(self) -> list[str]:
        """URLs of every node in the group (this one included), sorted."""
        return sorted(set(self.cluster.distribution()) | {self.url})

    def partitions(self) -> list[PartitionState]:
        """The input partitions this node holds, with their lag."""
        states = []
        for tp in sorted(self.cluster.assignment()):
            if tp.topic not in self.registry.input_topics:
                continue
            position = self.registry.positions.get(tp_key(tp.topic, tp.partition))
            highwater = self.cluster.highwater(tp)
            states.append(PartitionState(tp.topic, tp.partition, highwater, position))
        return states

    def ready(self) -> tuple[bool, str]:
        """Readiness: the consumer has joined the group and the models it holds are live.

        A node holding no partition (more nodes than partitions) is ready too: it answers
        every route by forwarding to the owners.
        """
        if not self.cluster.started:
            return False, "the Kafka consumer has not started"
        if self.cluster.rebalancing:
            return False, "the consumer group is rebalancing"
        if not self.lifecycle.assigned:
            return False, "the consumer has not joined the group yet"
        if not self.lifecycle.restored:
            return False, "models are being restored from their snapshots"
        return True, "ready"
