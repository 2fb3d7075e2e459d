"""Which partition a model's messages land in: Kafka's default partitioner on the model name.

The Java client, aiokafka and Faust all hash keys with murmur2, so this is the partition
every producer picks for a model.

Examples
--------
>>> partition_for("phishing", 4)
1
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def partition_for(model: str, partitions: int) -> int:
    """The partition of ``model``'s events and labels among ``partitions``."""
    return int(murmur2(model.encode()) & 0x7FFFFFFF) % partitions


def tp_key(topic: str, partition: int) -> str:
    """How a topic partition is named in offsets: ``topic:partition``."""
    return f"{topic}:{partition}"
