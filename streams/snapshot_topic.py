"""The compacted ``snapshots`` topic: snapshots published by one node, restored by the next.

Keyed by model, so the latest value per model is all that matters and every snapshot of a
model lies in the model's partition. A snapshot travels whole up to
``STREAMLEARN_SNAPSHOT_INLINE_MAX_BYTES``; above that, as a
:class:`~streams.learning.records.SnapshotPointer` to its file (readable by other machines
only through a shared volume).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.credentials import client_options
from streams.learning.errors import SnapshotRefused
from streams.learning.partitioning import partition_for
from streams.learning.records import SnapshotPointer
from streams.learning.snapshots import MAGIC, SnapshotInfo, SnapshotStore, open_sealed
from streams.learning.templates import home
from streams.settings import Settings

logger = logging.getLogger(__name__)


class SnapshotTopic:
    """Publishes the snapshots of ``store`` on ``topic`` (a Faust topic) and reads back the
    latest one of each model."""

    def __init__(self, settings: Settings, topic: Any, store: SnapshotStore) -> None:
        self.settings = settings
        self.topic = topic
        self.store = store

    async def publish(self, info: SnapshotInfo, *, wait: bool = False) -> None:
        """Put the snapshot (or, when large, a pointer to it) on the compacted snapshots topic;
        with ``wait``, return only once the broker has it."""
        path = self.store.directory / info.model / f"v{info.version:08d}.snapshot"
        if info.bytes <= self.settings.snapshot_inline_max_bytes:
            value = path.read_bytes()
        else:
            value = SnapshotPointer(
                info.model, info.version, info.created_at, info.offsets, info.bytes, str(path)
            ).encode()
        # In the partition of the model's events (a template's model: its template's).
        partition = partition_for(home(info.model), self.settings.topic_partitions)
        delivery = await self.topic.send(key=info.model.encode(), value=value, partition=partition)
        if wait:
            await delivery

    async def publish_or_log(self, info: SnapshotInfo) -> None:
        """:meth:`publish` and wait; a failure is logged, not raised: the local copy stands,
        and a node that restores from the topic instead replays more."""
        try:
            await self.publish(info, wait=True)
        except (KafkaError, OSError) as exc:
            logger.error("could not publish snapshot %s v%d: %r", info.model, info.version, exc)

    def open(self, name: str, value: bytes) -> tuple[dict[str, Any], bytes]:
        """Header and payload of a snapshot of ``name`` read from the topic (whole, or a
        pointer), its signature checked; nothing is unpickled."""
        if not value.startswith(MAGIC):
            with open(SnapshotPointer.decode(value).path, "rb") as handle:
                value = handle.read()
        header, payload = open_sealed(self.store.key, value, f"snapshot of {name} from the topic")
        if header.get("model") != name:
            raise SnapshotRefused(f"the topic's snapshot of {name!r} is of {header.get('model')!r}")
        return header, payload

    async def read_latest(self, partitions: Mapping[str, int]) -> dict[str, bytes]:
        """The latest value on the compacted snapshots topic for each model of ``partitions``
        (model name -> its partition).

        Read from the end backwards, in growing windows, until every model is found or the
        partition's start is reached: a partition not compacted yet may hold many
        snapshots, and only the last one of each model matters. When the topic cannot be
        read, nothing is returned (the node restores from its own snapshots, or relearns).
        """
        topic = self.settings.topic_name("snapshots")
        wanted: dict[TopicPartition, set[bytes]] = {}
        for name, partition in partitions.items():
            wanted.setdefault(TopicPartition(topic, partition), set()).add(name.encode())
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=self.settings.max_message_bytes,
            fetch_max_bytes=self.settings.max_message_bytes,
            **client_options(self.settings),
        )
        latest: dict[str, bytes] = {}
        try:
            await consumer.start()
            tps = sorted(wanted)
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                latest.update(await latest_values(consumer, tp, starts[tp], ends[tp], wanted[tp]))
        except KafkaError as exc:
            logger.error("could not read the snapshots topic: %r", exc)
            return {}
        finally:
            await consumer.stop()
        return latest


async def latest_values(
    consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int, keys: set[bytes]
) -> dict[str, bytes]:
    """The last value of each of ``keys`` in ``tp``, reading windows back from ``end``."""
    found: dict[str, bytes] = {}
    stop, window = end, 8
    while stop > start and len(found) < len(keys):
        first = max(start, stop - window)
        consumer.seek(tp, first)
        in_window: dict[str, bytes] = {}
        idle = 0
        while await consumer.position(tp) < stop and idle < 10:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            idle = 0 if batch else idle + 1
            for record in batch.get(tp, []):
                if record.offset < stop and record.key in keys and record.value is not None:
                    in_window[record.key.decode()] = record.value
        for name, value in in_window.items():
            found.setdefault(name, value)  # a later window (read earlier) has the newer one
        stop, window = first, window * 4
    return found
