"""Factories and stand-ins for the Faust side's unit tests: no broker, no Faust worker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition

from streams.learning.model import Limits
from streams.learning.partitioning import partition_for
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotInfo, SnapshotStore
from streams.learning.spec import ModelSpec
from streams.models_topic import Entry, ModelsTopic
from streams.rebalance import Lifecycle
from streams.settings import Settings
from streams.snapshot_topic import SnapshotTopic

KEY = b"key"


def registry(partitions: int = 1, **specs: ModelSpec) -> ModelRegistry:
    """A registry of ``specs`` (one regression model ``m`` by default) on topics ``ev``/``lb``."""
    if not specs:
        specs = {"m": ModelSpec(name="m", task="regression",
                                pipeline="linear_model.LinearRegression()")}  # fmt: skip
    return ModelRegistry(specs, Limits(), max_event_bytes=10_000,
                         input_topics=("ev", "lb"), partitions=partitions)  # fmt: skip


def event(i: int, model: str = "m") -> bytes:
    """A labelled event ``y = 2x`` with ``event_id`` ``i``."""
    return orjson.dumps(
        {"event_id": str(i), "model": model, "features": {"x": i}, "label": 2.0 * i}
    )


def learn(reg: ModelRegistry, n: int, start: int = 0, partition: int = 0) -> None:
    """Learn events ``start .. start + n - 1`` of model ``m``, at offsets of the same number."""
    for i in range(start, start + n):
        reg.handle_events(event(i), topic="ev", partition=partition, offset=i, now=0.0)


class Delivered:
    """What Faust's ``send_soon`` returns, already acknowledged: awaiting it returns at once."""

    def __await__(self) -> Iterator[None]:
        return iter(())


class RecordingFaustTopic:
    """Stands in for a Faust topic: ``send`` records and returns a delivered future."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        #: The partition and headers of each message sent with ``send_soon``.
        self.placed: list[tuple[int | None, list[tuple[str, bytes]] | None]] = []

    async def send(
        self, *, key: bytes, value: bytes, partition: int | None = None
    ) -> asyncio.Future[None]:
        self.sent.append((key, value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered

    def send_soon(
        self, *, key: bytes, value: bytes, partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Delivered:  # fmt: skip
        self.sent.append((key, value))
        self.placed.append((partition, headers))
        return Delivered()


class StandInTopic(SnapshotTopic):
    """The snapshots topic without a broker: publishing records the snapshot, and reading
    gives back what the test put there (``published``: model name -> value)."""

    def __init__(self, store: SnapshotStore, published: Mapping[str, bytes] | None = None) -> None:
        super().__init__(Settings(), RecordingFaustTopic(), store)
        self.published = dict(published or {})
        self.infos: list[SnapshotInfo] = []
        self.asked: list[dict[str, int]] = []

    async def publish(self, info: SnapshotInfo, *, wait: bool = False) -> None:
        self.infos.append(info)

    async def read_latest(self, partitions: Mapping[str, int]) -> dict[str, bytes]:
        self.asked.append(dict(partitions))
        return {name: v for name, v in self.published.items() if name in partitions}


@dataclass
class Assignment:
    """The consumer's assignment as a test sets it (``Lifecycle(assignment=...)``)."""

    tps: set[Any] = field(default_factory=set)

    def __call__(self) -> Iterable[Any]:
        return set(self.tps)


def lifecycle(
    reg: ModelRegistry,
    path: Path,
    published: Mapping[str, bytes] | None = None,
    assignment: Assignment | None = None,
) -> Lifecycle:
    """A lifecycle over ``reg`` with a store under ``path`` and a stand-in snapshots topic."""
    store = SnapshotStore(path, KEY, retention=5)
    return Lifecycle(reg, store, StandInTopic(store, published), assignment or Assignment())


class MemoryModelsTopic(ModelsTopic):
    """The models topic without a broker: one log per partition, which the stand-ins of
    several nodes may share (``log``); each reads it from its start. ``input_ends`` are the
    end offsets of input partitions (``"ev:0"`` -> 7) a new model starts from."""

    def __init__(
        self, partitions: int = 1, log: list[list[tuple[str, bytes | None]]] | None = None
    ) -> None:
        super().__init__(Settings(topic_partitions=partitions))
        self.log = log if log is not None else [[] for _ in range(partitions)]
        self.position = [0] * len(self.log)
        self.input_ends: dict[str, int] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def ends(self) -> dict[int, int]:
        return {p: len(entries) for p, entries in enumerate(self.log)}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.input_ends.get(f"{tp.topic}:{tp.partition}", 0) for tp in tps}

    async def read(self, timeout_ms: int = 500) -> list[Entry]:
        out = []
        for p, entries in enumerate(self.log):
            for offset in range(self.position[p], len(entries)):
                name, value = entries[offset]
                out.append(Entry(name, value, p, offset))
            self.position[p] = len(entries)
        if not out:
            await asyncio.sleep(0.005)
        return out

    async def write_many(self, values: dict[str, bytes]) -> None:
        for name, value in values.items():
            await self.write(name, value)

    async def write(self, name: str, value: bytes | None) -> tuple[int, int]:
        partition = partition_for(name, len(self.log))
        self.log[partition].append((name, value))
        return partition, len(self.log[partition]) - 1
