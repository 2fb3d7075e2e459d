"""Snapshots taken and restored by a node, and where its consumer resumes after assignment.

On every partition assignment Faust asks the consumer to seek to the committed offsets; the
node's consumer asks :meth:`Recovery.resume_positions` instead. For each assigned partition of
``events`` and ``labels`` that carries models, the models not yet live on this node are
restored from their latest snapshot, and the partition resumes at the smallest offset any of
them still needs. Each model skips what its snapshot already holds, so every event after a
snapshot is learned once more into the restored model, and none before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.learning.model import OnlineModel
from streams.learning.partitioning import tp_key
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import (
    MAGIC,
    SnapshotInfo,
    SnapshotRefused,
    SnapshotStore,
    open_sealed,
    restricted_loads,
)
from streams.settings import Settings

logger = logging.getLogger(__name__)

#: Snapshots up to this size travel whole on the snapshots topic; larger ones as a pointer.
INLINE_LIMIT = 900_000


def snapshot_key(settings: Settings) -> bytes:
    """The HMAC key: ``STREAMLEARN_SNAPSHOT_KEY``, or one generated once under the state dir."""
    if settings.snapshot_key is not None:
        return settings.snapshot_key.get_secret_value().encode()
    path = settings.state_dir / "snapshot.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class Recovery:
    """Takes, lists, restores and rolls back snapshots of the node's models."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        store: SnapshotStore,
        snapshots_topic: Any,
        promotions_topic: Any = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.snapshots_topic = snapshots_topic
        self.promotions_topic = promotions_topic
        #: Models restored (or started fresh) in this process: their in-memory state is current.
        self.live: set[str] = set()
        self.restored = False
        #: Held while a message is being learned (in slices) and while a snapshot is taken.
        self.lock = asyncio.Lock()

    def take(self, model: OnlineModel) -> SnapshotInfo:
        """Write a snapshot of ``model`` now (atomically, signed)."""
        offsets = self.registry.offsets_for(model)
        info = self.store.write(model.name, model.snapshot_state(offsets), offsets)
        model.n_learned_at_snapshot = model.n_learned
        logger.info(
            "snapshot %s v%d (%d bytes) at %s", model.name, info.version, info.bytes, offsets
        )
        return info

    async def publish(self, info: SnapshotInfo) -> None:
        """Put the snapshot (or, when large, a pointer to it) on the compacted snapshots topic."""
        path = self.store.directory / info.model / f"v{info.version:08d}.snapshot"
        if info.bytes <= INLINE_LIMIT:
            value = path.read_bytes()
        else:
            value = orjson.dumps({**info.public(), "model": info.model, "path": str(path)})
        await self.snapshots_topic.send(key=info.model.encode(), value=value)

    async def take_and_publish(self, model: OnlineModel) -> SnapshotInfo:
        """Snapshot between two messages, never in the middle of one; then publish it."""
        async with self.lock:
            info = self.take(self.registry.get(model.name))
        await self.publish(info)
        return info

    async def promote(self, name: str, candidate: str) -> dict[str, Any]:
        """Admin promotion: snapshot the champion first (so it can be rolled back), promote,
        snapshot again, and publish the promotion."""
        async with self.lock:
            model = self.registry.get(name)
            before = self.take(model)
            record = model.promote(candidate, reason="admin")
            record["snapshot_before"] = before.version
            after = self.take(model)
        for info in (before, after):
            await self.publish(info)
        await self.promotions_topic.send(key=name.encode(), value=orjson.dumps(record))
        logger.info("promotion in %s: %s -> %s (admin)", name, record["from"], record["to"])
        return record

    async def rollback(self, name: str, version: int) -> tuple[OnlineModel, SnapshotInfo]:
        """Roll the live model back to ``version``: its learned state, at today's offsets.

        The rolled-back model gets a new ``model_version`` and is snapshotted at once, so a
        crash cannot bring back the state it replaced.
        """
        async with self.lock:
            current = self.registry.get(name)
            state, info = self.store.read(name, version)
            offsets = self.registry.offsets_for(current)
            model = self.registry.reset_model(name)
            model.restore_state(state)
            model.offsets = offsets
            model.model_version = current.model_version + 1
            self.take(model)
        return model, info

    async def resume_positions(
        self, assigned: set[Any], committed: Mapping[Any, int]
    ) -> dict[Any, int]:
        """Restore the models of newly assigned partitions; where each partition resumes."""
        self.restored = False
        started = time.perf_counter()
        positions: dict[Any, int] = {}
        for tp in sorted(assigned):
            if tp.topic not in self.registry.input_topics:
                continue
            models = self.registry.models_on(tp.partition)
            if not models:
                continue
            for model in models:
                if model.name not in self.live:
                    await self.restore_latest(model.name)
                    self.live.add(model.name)
            key = tp_key(tp.topic, tp.partition)
            positions[tp] = min(
                self.registry.offsets_for(self.registry.get(m.name))[key] for m in models
            )
        self.restored = True
        elapsed = time.perf_counter() - started
        logger.info("resuming at %s (restored in %.3f s)", positions, elapsed)
        return positions

    async def restore_latest(self, name: str) -> None:
        """The newest valid snapshot of ``name`` (local, else from the topic), or a fresh model."""
        for version in reversed(self.store.versions(name)):
            try:
                state, info = self.store.read(name, version)
                self.registry.reset_model(name).restore_state(state)
            except (SnapshotRefused, ValueError) as exc:
                logger.error("refused snapshot %s v%d: %s", name, version, exc)
                continue
            logger.info("restored %s from v%d at %s", name, info.version, info.offsets)
            return
        state = await self._from_topic(name)
        if state is not None:
            self.registry.reset_model(name).restore_state(state)
            logger.info("restored %s from the snapshots topic at %s", name, state["offsets"])
            return
        self.registry.reset_model(name)
        logger.info("no snapshot of %s: it learns its partition from the start", name)

    async def _from_topic(self, name: str) -> dict[str, Any] | None:
        """The latest snapshot of ``name`` on the compacted snapshots topic, verified."""
        # Keyed by model, so all of a model's snapshots are in the model's partition.
        tp = TopicPartition(self.settings.topic_name("snapshots"), self.registry.partition_of(name))
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        latest: bytes | None = None
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=1000)
                for record in batches.get(tp, []):
                    if record.key == name.encode():
                        latest = record.value
        finally:
            await consumer.stop()
        if latest is None:
            return None
        try:
            if not latest.startswith(MAGIC):
                pointer = orjson.loads(latest)
                with open(pointer["path"], "rb") as handle:
                    latest = handle.read()
            _, payload = open_sealed(self.store.key, latest, f"snapshot of {name} from the topic")
            state: dict[str, Any] = restricted_loads(payload)
        except (SnapshotRefused, OSError, ValueError, KeyError) as exc:
            logger.error("refused snapshot of %s from the topic: %s", name, exc)
            return None
        return state
