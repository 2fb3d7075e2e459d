"""Moving misplaced events: what the learn agents write back to their models' partitions.

A producer that does not partition by murmur2 of the model name (librdkafka's default, round
robin) puts events on partitions their models are not learned from. The registry hands them
back as :class:`~streams.learning.records.Reroute` copies; a :class:`Mover` writes the copies of
one take, coalesced into as few messages as fit (one per target partition, usually), and waits
until the broker has them, because until then the copy is the only one that will be learned.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from streams.learning.records import REROUTED_FROM, Reroute


class Mover:
    """Collects the copies of a take and writes them, per topic and target partition, as JSON
    arrays of at most ``limit`` bytes (the node's ``STREAMLEARN_MAX_EVENT_BYTES``, so that
    the partition's owner takes them): moving a one-event message then costs a fraction of
    a produce and of a consume, instead of one of each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: defaultdict[tuple[Any, int], list[Reroute]] = defaultdict(list)
        self._sent: list[Any] = []

    def add(self, reroutes: list[Reroute], topic: Any) -> None:
        """Copies to write to their partitions of ``topic`` (the topic they came from)."""
        for reroute in reroutes:
            self._waiting[(topic, reroute.partition)].append(reroute)

    async def delivered(self) -> None:
        """Write what was added and return once the broker has acknowledged all of it: until
        then the originals' offsets must not count as done (a crash would lose the copy). A
        copy written twice (its original redelivered after a crash) is learned once, since
        models skip event ids they have seen."""
        for (topic, partition), reroutes in self._waiting.items():
            for chunk in _chunks(reroutes, self.limit):
                self._sent.append(topic.send_soon(
                    key=chunk[0].key, value=_value(chunk), partition=partition,
                    headers=[(REROUTED_FROM, _sources(chunk).encode())],
                ))  # fmt: skip
        self._waiting.clear()
        sent, self._sent = self._sent, []
        if sent:
            await asyncio.gather(*sent)


def _elements(value: bytes) -> bytes:
    """The elements of a message as they sit inside an array: an array's without its
    brackets, an object as it is (the value was decoded once already: it is valid JSON)."""
    stripped = value.strip()
    return stripped[1:-1].strip() if stripped.startswith(b"[") else stripped


def _chunks(reroutes: list[Reroute], limit: int) -> list[list[Reroute]]:
    """``reroutes`` in order, cut so that each chunk's array fits in ``limit`` bytes (a copy
    larger on its own travels alone)."""
    chunks: list[list[Reroute]] = [[]]
    size = 2
    for reroute in reroutes:
        length = len(reroute.value) + 1
        if chunks[-1] and size + length > limit:
            chunks.append([])
            size = 2
        chunks[-1].append(reroute)
        size += length
    return chunks


def _value(chunk: list[Reroute]) -> bytes:
    if len(chunk) == 1:
        return chunk[0].value
    return b"[" + b",".join(_elements(r.value) for r in chunk) + b"]"


def _sources(chunk: list[Reroute]) -> str:
    """Where the originals arrived: ``topic:partition:first-last`` per source partition."""
    offsets: defaultdict[str, list[int]] = defaultdict(list)
    for reroute in chunk:
        where, _, offset = reroute.source.rpartition(":")
        offsets[where].append(int(offset))
    return ",".join(
        f"{where}:{min(seen)}" if min(seen) == max(seen) else f"{where}:{min(seen)}-{max(seen)}"
        for where, seen in offsets.items()
    )
