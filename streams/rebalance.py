"""Which models are live on a node, and how they arrive and leave on a rebalance.

On every partition assignment Faust asks the consumer to seek to the committed offsets; the
node's consumer asks :meth:`Lifecycle.resume_positions` instead. For each assigned partition
of ``events`` and ``labels`` that carries models, the models not yet live on this node are
restored from the snapshot that has come furthest (this node's own, or the latest on the
snapshots topic, published by whichever node held them before: see
:func:`streams.learning.restore.choose_snapshot`), and the partition resumes at the smallest
offset any of them still needs. Each model skips what its snapshot already holds, so every
event after a snapshot is learned once more into the restored model, and none before it.
Before partitions are revoked (a rebalance) or the node stops, every live model is
snapshotted and published (:meth:`Lifecycle.hand_over`), so that the next owner replays
little; a model whose partition went elsewhere is dropped (:meth:`Lifecycle.on_assigned`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streams.learning.catalog import Catalog, spec_from_fields
from streams.learning.changes import apply_in_place, classify
from streams.learning.errors import SnapshotNotFound, SnapshotRefused
from streams.learning.model import OnlineModel
from streams.learning.partitioning import tp_key
from streams.learning.registry import ModelRegistry
from streams.learning.restore import SnapshotCandidate, choose_snapshot
from streams.learning.snapshots import ForkedWrite, SnapshotInfo, SnapshotStore, restricted_loads
from streams.snapshot_topic import SnapshotTopic

logger = logging.getLogger(__name__)


class Lifecycle:
    """The models live on this node: restored on assignment, snapshotted, handed over.

    ``assignment`` returns the consumer's assignment as it is now (a rebalance may have
    moved on while a restore ran).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        store: SnapshotStore,
        topic: SnapshotTopic,
        assignment: Callable[[], Iterable[Any]],
        catalog: Catalog | None = None,
    ) -> None:
        self.registry = registry
        #: The model registry as read from the models topic: where a model without a snapshot
        #: starts, and the spec a restored snapshot is brought up to.
        self.catalog = catalog if catalog is not None else Catalog()
        self.store = store
        self.topic = topic
        self.assignment = assignment
        #: Models restored (or started fresh) in this process: their in-memory state is current.
        self.live: set[str] = set()
        #: The consumer has had an assignment (possibly empty) from the group.
        self.assigned = False
        #: Every model of the assigned partitions is live.
        self.restored = False
        #: Held while a message is being learned (in slices) and while a snapshot is taken.
        self.lock = asyncio.Lock()
        #: The snapshot a child process is writing (:meth:`snapshot_soon`), and the task
        #: that waits for it and publishes it.
        self._forked: ForkedWrite | None = None
        self._writing: asyncio.Task[SnapshotInfo] | None = None

    def take(self, model: OnlineModel) -> SnapshotInfo:
        """Write a snapshot of ``model`` now (atomically, signed); the caller holds the lock.
        A snapshot still being written in the background is waited for first (blocking; it
        is rare), so that versions follow each other."""
        if self._forked is not None:
            with contextlib.suppress(OSError):  # its failure is its task's to report
                self._forked.wait()
        offsets = self.registry.offsets_for(model)
        info = self.store.write(model.name, model.snapshot_state(offsets), offsets)
        model.n_learned_at_snapshot = model.n_learned
        model.offsets = dict(offsets)
        logger.info(
            "snapshot %s v%d (%d bytes) at %s", model.name, info.version, info.bytes, offsets
        )
        return info

    async def take_and_publish(self, model: OnlineModel) -> SnapshotInfo:
        """Snapshot between two messages, never in the middle of one; then publish it."""
        return await asyncio.shield(await self.snapshot_soon(model))

    async def snapshot_soon(self, model: OnlineModel) -> asyncio.Task[SnapshotInfo]:
        """Snapshot ``model`` between two messages, never in the middle of one: the state is
        captured now (a fork, under the lock), written by the child process and then
        published in the background; the task returned does both and returns the snapshot.

        Learning and the loop go on meanwhile: pickling, signing and fsync never block
        them. The snapshot's offsets are those of the state captured. If the write fails,
        the model is due again (its next message brings another attempt).
        """
        while True:
            await self.settled()
            async with self.lock:
                if self.writing:
                    continue  # another one started while this waited for the lock
                model = self.registry.get(model.name)
                offsets = self.registry.offsets_for(model)
                forked = self.store.write_forked(model.name, model.snapshot_state(offsets), offsets)
                before = (model.n_learned_at_snapshot, model.offsets)
                model.n_learned_at_snapshot = model.n_learned
                model.offsets = dict(offsets)
                self._forked = forked
                self._writing = asyncio.create_task(self._publish_forked(model, forked, before))
                return self._writing

    async def _publish_forked(
        self, model: OnlineModel, forked: ForkedWrite, before: tuple[int, dict[str, int]]
    ) -> SnapshotInfo:
        """Wait for the child writing ``forked``, then publish what it wrote."""
        try:
            info = await asyncio.get_running_loop().run_in_executor(None, forked.wait)
        except OSError:
            if self.registry.models.get(model.name) is model:
                model.n_learned_at_snapshot, model.offsets = before
            raise
        logger.info(
            "snapshot %s v%d (%d bytes) at %s", model.name, info.version, info.bytes, info.offsets
        )
        await self.topic.publish(info)
        return info

    @property
    def writing(self) -> bool:
        """A snapshot is being written or published in the background."""
        return self._writing is not None and not self._writing.done()

    async def settled(self) -> None:
        """Return once no snapshot is being written or published in the background (its
        outcome is its task's)."""
        while self._writing is not None and self.writing:
            await asyncio.wait([self._writing])

    async def hand_over(self) -> None:
        """Snapshot and publish every live model that has moved since its last snapshot, and
        wait for the broker: whichever node holds it next resumes from here, not from an
        older snapshot. Runs when partitions are revoked and before a clean shutdown."""
        await self.settled()  # published before, so never after, the hand-over's snapshots
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
            await self.topic.publish_or_log(info)
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
            now = set(self.assignment())
            if {tp for tp in assigned if tp.topic in self.registry.input_topics} - now:
                self.on_assigned(now)  # the group moved on while this call restored
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
        partitions = {name: self.registry.partition_of(name) for name in names}
        published = await self.topic.read_latest(partitions) if names else {}
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
        """Become the snapshot of ``name`` that has come furthest among the local versions
        and the one ``published`` on the snapshots topic (by another node, say); the next
        one when a snapshot fails its checks; a fresh model when none is left."""
        candidates: list[SnapshotCandidate] = []
        for version in self.store.versions(name):
            try:
                info = self.store.info(name, version)
            except (OSError, ValueError, struct.error) as exc:
                logger.error("unreadable snapshot %s v%d: %s", name, version, exc)
                continue
            candidates.append(SnapshotCandidate(info.offsets, info.created_at, version))
        payload = b""
        if published is not None:
            try:
                header, payload = self.topic.open(name, published)
            except (SnapshotRefused, OSError, ValueError, KeyError) as exc:
                logger.error("refused snapshot of %s from the topic: %s", name, exc)
            else:
                candidates.append(
                    SnapshotCandidate(header["offsets"], str(header.get("created_at", "")),
                                      header.get("version"), published=True)
                )  # fmt: skip
        for candidate in choose_snapshot(candidates):
            label = (
                f"v{candidate.version} from the snapshots topic"
                if candidate.published
                else f"v{candidate.version} (local)"
            )
            try:
                state = self._load(name, candidate, payload)
                self._become(name, state)
            except (SnapshotRefused, SnapshotNotFound, OSError, ValueError, KeyError) as exc:
                logger.error("refused snapshot %s %s: %s", name, label, exc)
                continue
            logger.info("restored %s from %s at %s", name, label, state["offsets"])
            if candidate.published:  # keep a local copy, to be listed and rolled back to
                self.take(self.registry.get(name))
            return
        model = self.registry.reset_model(name)
        current = self.catalog.current(name)
        if current is not None:
            model.offsets = dict(current.offsets)
            model.model_version = current.model_version
        logger.info("no snapshot of %s: it learns its partition from %s", name,
                    model.offsets or "the start")  # fmt: skip

    def _become(self, name: str, state: dict[str, Any]) -> None:
        """Restore ``name`` from ``state``, brought up to the spec the registry gives it now: a
        snapshot taken before a change applied in place (new metrics, say) gets the change; one
        of another pipeline is refused (the model was rebuilt since: it starts afresh)."""
        spec = self.registry.get(name).spec
        build = self.catalog.current(name)
        if build is not None and any(
            state["offsets"].get(key, 0) < start for key, start in build.offsets.items()
        ):
            raise ValueError(f"the snapshot is older than the current build of {name!r}")
        theirs = spec_from_fields(
            name, {k: v for k, v in state.get("spec", {}).items() if k != "name"}
        )
        kind = classify(theirs, spec)
        if kind == "rebuild":
            raise ValueError(
                f"the snapshot is of an earlier pipeline of {name!r} (the registry rebuilt it"
                " since)"
            )
        model = self.registry.deploy(theirs)
        model.restore_state(state)
        if kind == "in_place":
            apply_in_place(model, spec)

    def _load(self, name: str, candidate: SnapshotCandidate, payload: bytes) -> dict[str, Any]:
        """Unpickle a candidate (the topic's ``payload``, or a local version)."""
        if candidate.published:
            state: dict[str, Any] = restricted_loads(payload)
        else:
            state = self.store.read(name, candidate.version)[0]
        return state
