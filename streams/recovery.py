"""Snapshots taken and restored by a node, and where its consumer resumes after assignment.

On every partition assignment Faust asks the consumer to seek to the committed offsets; the
node's consumer asks :meth:`Recovery.resume_positions` instead. For each assigned partition of
``events`` and ``labels`` that carries models, the models not yet live on this node are
restored from the snapshot that has come furthest (this node's own, or the latest on the
snapshots topic, published by whichever node held them before), and the partition resumes
at the smallest offset any of them still needs. Each model skips what its snapshot already
holds, so every event after a snapshot is learned once more into the restored model, and
none before it. Before partitions are revoked (a rebalance) or the node stops, every live
model is snapshotted and published (:meth:`Recovery.hand_over`), so that the next owner
replays little; a model whose partition went elsewhere is dropped (:meth:`Recovery.on_assigned`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.learning.errors import SnapshotNotFound, SnapshotRefused, UnknownCandidate
from streams.learning.model import OnlineModel
from streams.learning.partitioning import tp_key
from streams.learning.records import SnapshotPointer
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import (
    MAGIC,
    SnapshotInfo,
    SnapshotStore,
    open_sealed,
    restricted_loads,
)
from streams.settings import Settings

logger = logging.getLogger(__name__)


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
        #: The consumer's assignment now (set by the node; ``None`` outside a Faust app).
        self.current_assignment: Callable[[], set[Any]] | None = None
        #: The consumer has had an assignment (possibly empty) from the group.
        self.assigned = False
        #: Every model of the assigned partitions is live.
        self.restored = False
        #: Held while a message is being learned (in slices) and while a snapshot is taken.
        self.lock = asyncio.Lock()

    def take(self, model: OnlineModel) -> SnapshotInfo:
        """Write a snapshot of ``model`` now (atomically, signed)."""
        offsets = self.registry.offsets_for(model)
        info = self.store.write(model.name, model.snapshot_state(offsets), offsets)
        model.n_learned_at_snapshot = model.n_learned
        model.offsets = dict(offsets)
        logger.info(
            "snapshot %s v%d (%d bytes) at %s", model.name, info.version, info.bytes, offsets
        )
        return info

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
        delivery = await self.snapshots_topic.send(key=info.model.encode(), value=value)
        if wait:
            await delivery

    async def publish_or_log(self, info: SnapshotInfo) -> None:
        """:meth:`publish` and wait; a failure is logged, not raised: the local copy stands,
        and a node that restores from the topic instead replays more."""
        try:
            await self.publish(info, wait=True)
        except (KafkaError, OSError) as exc:
            logger.error("could not publish snapshot %s v%d: %r", info.model, info.version, exc)

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
            if all(c.name != candidate for c in model.challengers):
                raise UnknownCandidate(name, candidate)  # before any snapshot is taken
            before = self.take(model)
            record = model.promote(candidate, reason="admin")
            self.registry.forget(name)
            record.snapshot_before = before.version
            after = self.take(model)
        for info in (before, after):
            await self.publish(info)
        await self.promotions_topic.send(key=name.encode(), value=record.encode())
        logger.info("promotion in %s: %s -> %s (admin)", name, record.from_, record.to)
        return record.as_dict()

    async def rollback(self, name: str, version: int) -> tuple[OnlineModel, SnapshotInfo]:
        """Roll the live model back to ``version``: its learned state, at today's offsets.

        The rolled-back model gets a new ``model_version`` and is snapshotted and published at
        once, so neither a crash nor a move to another node brings back the state it replaced.
        """
        async with self.lock:
            current = self.registry.get(name)
            state, info = self.store.read(name, version)
            offsets = self.registry.offsets_for(current)
            model = self.registry.reset_model(name)
            model.restore_state(state)
            model.offsets = offsets
            model.model_version = current.model_version + 1
            after = self.take(model)
        await self.publish_or_log(after)  # whichever node holds it next must see it
        return model, info

    async def hand_over(self) -> None:
        """Snapshot and publish every live model that has moved since its last snapshot, and
        wait for the broker: whichever node holds it next resumes from here, not from an
        older snapshot. Runs when partitions are revoked and before a clean shutdown."""
        async with self.lock:
            infos = [
                self.take(model)
                for model in (self.registry.get(name) for name in sorted(self.live))
                if any(
                    offset != model.offsets.get(key, 0)
                    for key, offset in self.registry.offsets_for(model).items()
                )
            ]
        for info in infos:
            await self.publish_or_log(info)
        if infos:
            logger.info("handed over %s", [info.model for info in infos])

    def on_assigned(self, assigned: set[Any]) -> None:
        """A new assignment: models whose partition went elsewhere are dropped, so this
        node neither serves nor snapshots a state another node is moving on from."""
        held = {tp.partition for tp in assigned if tp.topic in self.registry.input_topics}
        gone = {self.registry.partition_of(name) for name in self.live} - held
        for partition in sorted(gone):
            names = self.registry.release(partition)
            self.live.difference_update(names)
            logger.info("partition %d moved to another node: dropped %s", partition, names)
        self.restored = all(
            model.name in self.live for p in held for model in self.registry.models_on(p)
        )
        self.assigned = True

    async def resume_positions(
        self, assigned: set[Any], committed: Mapping[Any, int]
    ) -> dict[Any, int]:
        """Restore the models of newly assigned partitions; where each partition resumes.

        Faust may call this twice for one assignment, and a call may outlive its assignment
        (a new rebalance while it reads the topic): calls run one at a time, under the lock
        that keeps learning out, and what no longer belongs to the consumer's current
        assignment when a call ends is dropped again.
        """
        async with self.lock:
            self.restored = False
            positions = await self._resume(assigned)
            now = self.current_assignment() if self.current_assignment else assigned
            if {tp for tp in assigned if tp.topic in self.registry.input_topics} - set(now):
                self.on_assigned(set(now))  # the group moved on while this call restored
            else:
                self.restored = True
        return positions

    async def _resume(self, assigned: set[Any]) -> dict[Any, int]:
        started = time.perf_counter()
        held = {tp.partition for tp in assigned if tp.topic in self.registry.input_topics}
        arriving = sorted(
            p for p in held if any(m.name not in self.live for m in self.registry.models_on(p))
        )
        names = [m.name for p in arriving for m in self.registry.models_on(p)]
        published = await self.read_published(names) if names else {}
        for partition in arriving:
            self.registry.release(partition)  # positions of an earlier stay here are stale
            for model in self.registry.models_on(partition):
                self.restore_latest(model.name, published.get(model.name))
                self.live.add(model.name)
        positions: dict[Any, int] = {}
        for tp in sorted(assigned):
            models = self.registry.models_on(tp.partition)
            if tp.topic not in self.registry.input_topics or not models:
                continue
            key = tp_key(tp.topic, tp.partition)
            positions[tp] = min(self.registry.offsets_for(m)[key] for m in models)
            self.registry.positions[key] = positions[tp]
        elapsed = time.perf_counter() - started
        logger.info("resuming at %s (restored %s in %.3f s)", positions, names, elapsed)
        return positions

    def restore_latest(self, name: str, published: bytes | None = None) -> None:
        """Become the snapshot of ``name`` that has come furthest: the local versions and the
        one ``published`` on the snapshots topic (by another node, say), newest first; the
        next one when a snapshot fails its checks; a fresh model when none is left."""
        # (progress, created_at, rank: local version or -1 for the topic, load, label): at
        # equal offsets the later one (a rollback, a promotion) wins, then the local copy.
        candidates: list[tuple[int, str, int, Callable[[], dict[str, Any]], str]] = []
        for version in self.store.versions(name):
            try:
                info = self.store.info(name, version)
            except (OSError, ValueError, struct.error) as exc:
                logger.error("unreadable snapshot %s v%d: %s", name, version, exc)
                continue
            candidates.append(
                (_progress(info.offsets), info.created_at, version,
                 _local_loader(self.store, name, version), f"v{version} (local)")
            )  # fmt: skip
        if published is not None:
            try:
                header, payload = self._open_published(name, published)
            except (SnapshotRefused, OSError, ValueError, KeyError) as exc:
                logger.error("refused snapshot of %s from the topic: %s", name, exc)
            else:
                candidates.append(
                    (_progress(header["offsets"]), str(header.get("created_at", "")), -1,
                     lambda: restricted_loads(payload),
                     f"v{header.get('version')} from the snapshots topic")
                )  # fmt: skip
        for _, _, rank, load, label in sorted(candidates, key=lambda c: c[:3], reverse=True):
            try:
                state = load()
                self.registry.reset_model(name).restore_state(state)
            except (SnapshotRefused, SnapshotNotFound, OSError, ValueError, KeyError) as exc:
                logger.error("refused snapshot %s %s: %s", name, label, exc)
                continue
            logger.info("restored %s from %s at %s", name, label, state["offsets"])
            if rank < 0:  # from the topic: keep a local copy, to be listed and rolled back to
                self.take(self.registry.get(name))
            return
        self.registry.reset_model(name)
        logger.info("no snapshot of %s: it learns its partition from the start", name)

    def _open_published(self, name: str, value: bytes) -> tuple[dict[str, Any], bytes]:
        """Header and payload of a snapshot read from the topic (whole, or a pointer)."""
        if not value.startswith(MAGIC):
            with open(SnapshotPointer.decode(value).path, "rb") as handle:
                value = handle.read()
        header, payload = open_sealed(self.store.key, value, f"snapshot of {name} from the topic")
        if header.get("model") != name:
            raise SnapshotRefused(f"the topic's snapshot of {name!r} is of {header.get('model')!r}")
        return header, payload

    async def read_published(self, names: list[str]) -> dict[str, bytes]:
        """The latest value on the compacted snapshots topic for each of ``names``.

        Read from the end backwards, in growing windows, until every model is found or the
        partition's start is reached: a partition not compacted yet may hold many
        snapshots, and only the last one of each model matters. When the topic cannot be
        read, nothing is returned (the node restores from its own snapshots, or relearns).
        """
        if self.snapshots_topic is None:  # a node without a topic keeps snapshots local
            return {}
        topic = self.settings.topic_name("snapshots")
        # Keyed by model, so all of a model's snapshots are in the model's partition.
        wanted: dict[TopicPartition, set[bytes]] = {}
        for name in names:
            tp = TopicPartition(topic, self.registry.partition_of(name))
            wanted.setdefault(tp, set()).add(name.encode())
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=self.settings.max_message_bytes,
            fetch_max_bytes=self.settings.max_message_bytes,
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


def _progress(offsets: Mapping[str, int]) -> int:
    """How far a snapshot has come: the sum of the offsets it resumes at."""
    return sum(offsets.values())


def _local_loader(store: SnapshotStore, name: str, version: int) -> Callable[[], dict[str, Any]]:
    def load() -> dict[str, Any]:
        state: dict[str, Any] = store.read(name, version)[0]
        return state

    return load
