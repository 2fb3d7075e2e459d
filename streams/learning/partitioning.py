"""Which partition a model's messages land in: Kafka's default partitioner on the model name.

The Java client, aiokafka and Faust all hash keys with murmur2, so this is the partition
every producer picks for a model. The hash is written out here (it is short) so that the
learning core needs no Kafka client.

Examples
--------
>>> partition_for("phishing", 4)
1
>>> murmur2(b"phishing") & 0x7FFFFFFF
2097270557
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``), as an
    unsigned 32-bit integer."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length % 4
    if extra == 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(model: str, partitions: int) -> int:
    """The partition of ``model``'s events and labels among ``partitions``."""
    return (murmur2(model.encode()) & 0x7FFFFFFF) % partitions


def tp_key(topic: str, partition: int) -> str:
    """How a topic partition is named in offsets: ``topic:partition``."""
    return f"{topic}:{partition}"
