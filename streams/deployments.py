"""Deploy, change and retire models without a restart: the node's registry, in step with the
``models`` topic.

Every node reads the whole topic before it joins its group, then follows it, and applies
each record to its :class:`~streams.learning.registry.ModelRegistry` (see
:mod:`streams.learning.catalog`). The owner of a model's partition is the one node that
writes a change of it (the HTTP side relays ``PUT`` and ``DELETE`` to it), under the lock that
keeps learning out, in an order that leaves every node agreeing whatever instant it is
killed at:

1. a rebuild first snapshots the old model and waits for the snapshots topic to have it (it
   is kept to roll back to);
2. the record is written, with the offsets of the input partitions the new build learns from
   (a new model: the end of its partitions now; a rebuild: where the old one stopped), and
   the broker's acknowledgement awaited: from here the change is the registry's truth;
3. the change is applied here, and the model snapshotted and published.

A node restoring the model later (a rebalance, a kill -9 after step 2) brings the snapshot it
finds up to the registry's spec, or starts the build at the record's offsets when no snapshot
of that build exists (:meth:`streams.rebalance.Lifecycle.restore_latest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from streams.kafka_check import quiet
from streams.learning.catalog import Catalog, Change, ModelRecord
from streams.learning.changes import apply_in_place, changed_fields
from streams.learning.errors import ModelUnavailable, SpecError
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotInfo
from streams.learning.spec import ModelSpec
from streams.learning.templates import Template
from streams.models_topic import Entry, ModelsTopic
from streams.owner_writes import OwnerWrites, now
from streams.rebalance import Lifecycle

logger = logging.getLogger(__name__)

#: How long a write waits for this node to have read the whole registry first.
CATCH_UP_SECONDS = 30.0
#: ``who`` of the records seeded from the models file.
FROM_FILE = "file"


class Deployments(OwnerWrites):
    """The registry of this node: read from the models topic, changed through it (by its
    owner: :class:`~streams.owner_writes.OwnerWrites`)."""

    def __init__(
        self,
        registry: ModelRegistry,
        lifecycle: Lifecycle,
        topic: ModelsTopic,
        file_specs: dict[str, ModelSpec],
        file_templates: dict[str, tuple[ModelSpec, Template]] | None = None,
    ) -> None:
        self.registry = registry
        self.lifecycle = lifecycle
        self.catalog: Catalog = lifecycle.catalog
        self.topic = topic
        self.file_specs = file_specs
        self.file_templates = file_templates or {}
        #: The next offset applied, per partition of the models topic.
        self.applied: dict[int, int] = {}
        #: Called after every change applied (the HTTP side refreshes its OpenAPI text).
        self.listeners: list[Callable[[Change], None]] = []
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Read the registry to its end (seeding it from the models file when the topic is
        empty: the group's first start), make the node's models those, and follow it."""
        # A topic created a moment ago has no leader yet: aiokafka logs each retry as an error.
        with quiet("aiokafka.consumer.fetcher"):
            await self.topic.start()
            ends = await self.topic.ends()
            await self._read_to(ends)
        if not any(ends.values()):
            when = now()
            for spec in self.file_specs.values():
                record = self.catalog.propose(spec, FROM_FILE, when)
                await self.topic.write(spec.name, record.encode())
            for spec, template in self.file_templates.values():
                record = self.catalog.propose(spec, FROM_FILE, when, template=template)
                await self.topic.write(spec.name, record.encode())
            await self._read_to(await self.topic.ends())
            seeded = sorted([*self.file_specs, *self.file_templates])
            logger.info("the model registry was empty: seeded it with %s", seeded)
        else:
            self._compare_with_file()
        specs = self.catalog.specs()
        for name in [n for n in self.registry.models if n not in specs]:
            self.registry.retire(name)
        for name, spec in specs.items():
            model = self.registry.models.get(name)
            if model is None or model.spec != spec:
                self.registry.deploy(spec)
        for name, version in self.catalog.templates().items():
            if version.template is not None:
                self.registry.templates[name] = (version.spec, version.template)
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        """Stop following the topic (the worker stops)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.topic.stop()

    def _compare_with_file(self) -> None:
        # The models templates made are not in any file.
        registry = {n: spec for n, spec in self.catalog.specs().items() if ":" not in n}
        for name in sorted(set(registry) | set(self.file_specs)):
            theirs, ours = registry.get(name), self.file_specs.get(name)
            if theirs is None:
                difference = "is not in the registry (deploy it with PUT /models/NAME)"
            elif ours is None:
                difference = "is in the registry but not in the file"
            elif theirs != ours:
                difference = (
                    f"differs from the registry in {', '.join(changed_fields(theirs, ours))}"
                )
            else:
                continue
            logger.warning(
                "models file: model %r %s; the registry on the models topic is what the group"
                " runs (`streamlearn models apply FILE` makes the file the registry)",
                name, difference,
            )  # fmt: skip

    async def _read_to(self, ends: dict[int, int]) -> None:
        """Read and apply until every partition is applied up to ``ends`` (before following)."""
        while any(self.applied.get(p, 0) < end for p, end in ends.items()):
            for entry in await self.topic.read():
                await self._apply(entry)

    async def _follow(self) -> None:
        async for entries in self.topic.follow():
            for entry in entries:
                try:
                    await self._apply(entry)
                except Exception:  # a change this node could not apply must not stop it
                    logger.exception("could not apply the registry's record of %r", entry.name)

    async def caught_up(self, name: str, timeout: float = CATCH_UP_SECONDS) -> None:
        """Wait until this node has applied everything written to the topic so far."""
        ends = await self.topic.ends()
        deadline = time.monotonic() + timeout
        while any(self.applied.get(p, 0) < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise ModelUnavailable(
                    name, "cannot be changed yet: this node is behind the models topic"
                )
            await asyncio.sleep(0.01)

    async def _apply(self, entry: Entry) -> None:
        record = None
        if entry.value is not None:
            try:
                record = ModelRecord.decode(entry.name, entry.value)
            except SpecError as exc:
                logger.error("models topic %d@%d: %s; skipped", entry.partition, entry.offset, exc)
        if entry.value is None or record is not None:
            async with self.lifecycle.lock:
                change = self.catalog.apply(entry.name, record)
                info = self._enact(change)
            if info is not None:
                await self.lifecycle.topic.publish_or_log(info)
            self._announce(change)
        self.applied[entry.partition] = entry.offset + 1

    def _announce(self, change: Change) -> None:
        if change.kind in ("unchanged", "unknown"):
            return
        version = change.new.version if change.new else change.old.version if change.old else 0
        logger.info("registry: model %r %s (v%d)", change.name, change.kind, version)
        for listener in self.listeners:
            listener(change)

    def holds(self, name: str) -> bool:
        """This node holds the partition of ``name`` (its owner, once restored)."""
        if not self.lifecycle.assigned:
            return False
        events = self.registry.input_topics[0]
        partition = self.registry.partition_of(name)
        return any(
            tp.topic == events and tp.partition == partition for tp in self.lifecycle.assignment()
        )

    def _enact(self, change: Change, *, keep_old: bool = True) -> SnapshotInfo | None:
        """Apply ``change`` to the registry (the caller holds the lifecycle's lock); the
        snapshot to publish, if one was taken."""
        name, live = change.name, change.name in self.lifecycle.live
        info = None
        made = change.new if change.new is not None else change.old
        if made is not None and made.template is not None:  # a template: no model of its own
            if change.kind == "retired":
                self.registry.templates.pop(name, None)
            else:
                self.registry.templates[name] = (made.spec, made.template)
            return None
        if change.kind == "created" and live:
            return None  # made here by a template, which wrote this record
        if change.kind == "retired":
            if live and keep_old:
                info = self.lifecycle.take(self.registry.get(name))
            self.lifecycle.live.discard(name)
            self.registry.retire(name)
        elif change.kind in ("created", "rebuilt") and change.new is not None:
            if live and keep_old:
                info = self.lifecycle.take(self.registry.get(name))
            model = self.registry.deploy(change.new.spec)
            model.offsets = dict(change.new.offsets)
            model.model_version = change.new.model_version
            if self.holds(name):
                self.lifecycle.live.add(name)
        elif change.kind == "in_place" and change.new is not None:
            if live:
                apply_in_place(self.registry.get(name), change.new.spec)
            else:
                self.registry.deploy(change.new.spec)
        return info
