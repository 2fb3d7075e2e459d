"""The owner's side of the registry: deploy, change, retire and roll back a model, and
record the models a template makes. Mixed into :class:`streams.deployments.Deployments`
(see there for the order of the steps, which keeps every node agreeing through a kill -9).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import TopicPartition

from streams.learning.catalog import Catalog, Change, spec_from_fields
from streams.learning.changes import apply_in_place, classify
from streams.learning.errors import InvalidSpec, ModelUnavailable, UnknownModel
from streams.learning.model import OnlineModel
from streams.learning.partitioning import tp_key
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotInfo
from streams.learning.spec import ModelSpec
from streams.learning.templates import Template, home
from streams.models_topic import ModelsTopic
from streams.rebalance import Lifecycle


def now() -> str:
    return datetime.now(UTC).isoformat()


class OwnerWrites:
    """Changes of the registry made by the owner of a model's partition, under the lock that
    keeps learning out."""

    registry: ModelRegistry
    lifecycle: Lifecycle
    catalog: Catalog
    topic: ModelsTopic
    _writing: asyncio.Lock
    holds: Callable[[str], bool]
    _enact: Callable[..., SnapshotInfo | None]
    _announce: Callable[[Change], None]
    caught_up: Callable[[str], Awaitable[None]]

    def _require_owner(self, name: str) -> None:
        if not self.holds(name) or not self.lifecycle.restored:
            raise ModelUnavailable(
                name,
                "cannot be changed on this node: its partition is held by another node, or is"
                " moving between nodes",
            )

    async def put(
        self, spec: ModelSpec, who: str | None, template: Template | None = None
    ) -> Change:
        """Make ``spec`` the next version of its model, or of a template (this node must
        hold its partition); ``unchanged`` when it is the current one already (nothing is
        written)."""
        name = spec.name
        async with self._writing:
            await self.caught_up(name)
            old = self.catalog.current(name)
            kind = "created" if old is None else classify(old.spec, spec)
            if old is not None and kind == "unchanged" and old.template == template:
                return Change("unchanged", name, old, old)
            self._require_owner(name)
            if template is not None or (old is not None and old.template is not None):
                return await self._put_template(spec, who, template)
            async with self.lifecycle.lock:
                model = self.registry.models.get(name)
                if old is None or model is None:
                    offsets, model_version = await self._ends_of(name), 1
                elif kind == "rebuild":
                    before = self.lifecycle.take(model)  # kept, to roll back to
                    await self.lifecycle.topic.publish(before, wait=True)
                    offsets = self.registry.offsets_for(model)
                    model_version = model.model_version + 1
                else:  # in place: the build goes on
                    offsets, model_version = dict(old.offsets), old.model_version
                record = self.catalog.propose(spec, who, now(), offsets, model_version)
                await self.topic.write(name, record.encode())
                change = self.catalog.apply(name, record)
                self._enact(change, keep_old=False)
                self.lifecycle.live.add(name)
                info = self.lifecycle.take(self.registry.get(name))
            await self.lifecycle.topic.publish_or_log(info)
        self._announce(change)
        return change

    async def _put_template(
        self, spec: ModelSpec, who: str | None, template: Template | None
    ) -> Change:
        """A template's spec: for the models it makes from now on (a model and a template
        never share a name: one becomes the other only after it is retired)."""
        old = self.catalog.current(spec.name)
        if template is None or (old is not None and old.template is None):
            raise InvalidSpec(
                f"name: {spec.name!r} is a {'template' if template is None else 'model'};"
                " retire it first to make it a " + ("model" if template is None else "template"),
                "key_field",
            )
        async with self.lifecycle.lock:
            record = self.catalog.propose(spec, who, now(), template=template)
            await self.topic.write(spec.name, record.encode())
            change = self.catalog.apply(spec.name, record)
            self._enact(change)
        self._announce(change)
        return change

    async def register(self, models: list[OnlineModel]) -> None:
        """Record the models a template made on this node (its owner) as it made them, so
        that whichever node holds them next knows them and where each started. Models made
        earlier whose record could not be written (the broker failed) are recorded too."""
        changes = []
        async with self.lifecycle.lock:
            named = {model.name for model in models}
            named |= {n for n in self.registry.models if ":" in n and n not in self.catalog}
            records = {}
            for name in sorted(named):
                model = self.registry.models.get(name)
                if model is None or name in self.catalog:
                    continue
                self.lifecycle.live.add(name)
                who = f"template {home(name)}"
                records[name] = self.catalog.propose(model.spec, who, now(), dict(model.offsets))
            await self.topic.write_many({n: r.encode() for n, r in records.items()})
            changes = [self.catalog.apply(name, record) for name, record in records.items()]
        for change in changes:
            self._announce(change)

    async def retire(self, name: str) -> Change:
        """Retire model ``name``: a tombstone on the topic; its snapshots are kept."""
        async with self._writing:
            await self.caught_up(name)
            if self.catalog.current(name) is None:
                raise UnknownModel(name)
            self._require_owner(name)
            async with self.lifecycle.lock:
                if name in self.lifecycle.live:
                    last = self.lifecycle.take(self.registry.get(name))
                    await self.lifecycle.topic.publish(last, wait=True)
                await self.topic.write(name, None)
                change = self.catalog.apply(name, None)
                self._enact(change, keep_old=False)
        self._announce(change)
        return change

    async def _ends_of(self, name: str) -> dict[str, int]:
        """Where a new model starts: the end of its input partitions now, so it learns the
        events written after it was deployed."""
        partition = self.registry.partition_of(name)
        tps = [TopicPartition(topic, partition) for topic in self.registry.input_topics]
        ends = await self.topic.end_offsets(tps)
        return {tp_key(tp.topic, tp.partition): ends[tp] for tp in tps}

    async def roll_back(
        self, name: str, version: int, who: str | None
    ) -> tuple[OnlineModel, SnapshotInfo] | None:
        """Roll model ``name`` back to snapshot ``version`` when that snapshot was taken under
        another spec (``None`` when under this one: a plain rollback will do). A snapshot of
        an earlier build (another pipeline, say) brings its spec back into the registry as a
        new version; one from before an in-place change keeps today's settings. Either way
        the model keeps today's offsets and gets the next ``model_version``."""
        state, info = self.lifecycle.store.read(name, version)
        fields = {k: v for k, v in state.get("spec", {}).items() if k != "name"}
        theirs = spec_from_fields(name, fields)
        if theirs == self.registry.get(name).spec:
            return None
        async with self._writing:
            await self.caught_up(name)
            current = self.registry.get(name)
            self._require_owner(name)
            async with self.lifecycle.lock:
                offsets = self.registry.offsets_for(current)
                rebuild = classify(theirs, current.spec) == "rebuild"
                if rebuild:
                    kept = self.lifecycle.take(current)
                    await self.lifecycle.topic.publish(kept, wait=True)
                    record = self.catalog.propose(
                        theirs, who, now(), offsets, current.model_version + 1
                    )
                    await self.topic.write(name, record.encode())
                    change = self.catalog.apply(name, record)
                model = self.registry.deploy(theirs)
                model.restore_state(state)
                if not rebuild:
                    apply_in_place(model, current.spec)
                model.offsets = offsets
                model.model_version = current.model_version + 1
                after = self.lifecycle.take(model)
            await self.lifecycle.topic.publish_or_log(after)
        if rebuild:
            self._announce(change)
        return model, info
