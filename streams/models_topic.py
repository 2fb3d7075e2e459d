"""The compacted ``models`` topic: the model registry, read whole by every node, written by
the owner of the model a change is about.

Every node reads every partition of the topic from its start, outside the consumer group
(each node needs all of it, not a share), and then follows it. Writes wait for the broker
(``acks=all``, idempotent): a change is acknowledged to its caller only once it is on the
topic, and the node that wrote it knows the offset to wait for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.credentials import client_options
from streams.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the ``models`` topic: a model's record, or a tombstone (``None``)."""

    name: str
    value: bytes | None
    partition: int
    offset: int


class ModelsTopic:
    """Reads the ``models`` topic from its start and follows it; writes records to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.name = settings.topic_name("models")
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        settings = self.settings
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            **client_options(settings),
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            **client_options(settings),
        )
        await self._consumer.start()
        await self._producer.start()
        # Created with the other contract topics, with their partition count.
        self._partitions = [TopicPartition(self.name, p) for p in range(settings.topic_partitions)]
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)

    async def stop(self) -> None:
        clients = (self._consumer, self._producer)
        self._consumer = self._producer = None
        for client in clients:
            if client is not None:
                await client.stop()

    async def ends(self) -> dict[int, int]:
        """The next offset to be written, per partition."""
        assert self._consumer is not None, "start() first"
        ends = await self._consumer.end_offsets(self._partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The end offsets of any partitions (of other topics too), as the broker has them."""
        assert self._consumer is not None, "start() first"
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(tps)
        return ends

    async def read(self, timeout_ms: int = 500) -> list[Entry]:
        """What arrived since the last read (waiting at most ``timeout_ms`` for something)."""
        assert self._consumer is not None, "start() first"
        batches = await self._consumer.getmany(timeout_ms=timeout_ms)
        return [
            Entry(record.key.decode("utf-8", errors="replace"), record.value, tp.partition,
                  record.offset)
            for tp in sorted(batches)
            for record in batches[tp]
            if record.key is not None
        ]  # fmt: skip

    async def follow(self) -> AsyncIterator[list[Entry]]:
        """Every read, forever (until the task is cancelled)."""
        while True:
            yield await self.read()

    async def write_many(self, values: dict[str, bytes]) -> None:
        """Write a record per name at once, and wait for the broker to have them all."""
        assert self._producer is not None, "start() first"
        sent = [
            await self._producer.send(self.name, value=v, key=n.encode()) for n, v in values.items()
        ]
        await asyncio.gather(*sent)

    async def write(self, name: str, value: bytes | None) -> tuple[int, int]:
        """Write ``value`` (``None``: a tombstone) under key ``name``; once the broker has it,
        its partition and offset."""
        assert self._producer is not None, "start() first"
        metadata = await self._producer.send_and_wait(self.name, value=value, key=name.encode())
        return metadata.partition, metadata.offset
