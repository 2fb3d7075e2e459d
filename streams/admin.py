"""What an operator may do to a live model: snapshot it now, promote a challenger, roll back.

Each runs between two messages, under the lock that keeps learning out, and publishes what it
changed, so that neither a crash nor a move to another node brings back the state it replaced.
"""

from __future__ import annotations

import logging
from typing import Any

from streams.agents.publish import Publisher
from streams.learning.errors import UnknownCandidate
from streams.learning.model import OnlineModel
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotInfo, SnapshotStore
from streams.rebalance import Lifecycle
from streams.snapshot_topic import SnapshotTopic

logger = logging.getLogger(__name__)


class Admin:
    """The admin actions on the models live on this node."""

    def __init__(
        self,
        registry: ModelRegistry,
        lifecycle: Lifecycle,
        store: SnapshotStore,
        topic: SnapshotTopic,
        publisher: Publisher,
    ) -> None:
        self.registry = registry
        self.lifecycle = lifecycle
        self.store = store
        self.topic = topic
        self.publisher = publisher

    async def snapshot(self, model: OnlineModel) -> SnapshotInfo:
        """Snapshot ``model`` now (signed, written atomically) and publish it."""
        return await self.lifecycle.take_and_publish(model)

    async def promote(self, name: str, candidate: str) -> dict[str, Any]:
        """Admin promotion: snapshot the champion first (so it can be rolled back), promote,
        snapshot again, and publish the promotion."""
        async with self.lifecycle.lock:
            model = self.registry.get(name)
            if all(c.name != candidate for c in model.challengers):
                raise UnknownCandidate(name, candidate)  # before any snapshot is taken
            before = self.lifecycle.take(model)
            record = model.promote(candidate, reason="admin")
            self.registry.forget(name)
            record.snapshot_before = before.version
            after = self.lifecycle.take(model)
        for info in (before, after):
            await self.topic.publish(info)
        self.publisher.promotion(record)
        return record.as_dict()

    async def rollback(self, name: str, version: int) -> tuple[OnlineModel, SnapshotInfo]:
        """Roll the live model back to ``version``: its learned state, at today's offsets.

        The rolled-back model gets a new ``model_version`` and is snapshotted and published at
        once, so neither a crash nor a move to another node brings back the state it replaced.
        """
        async with self.lifecycle.lock:
            current = self.registry.get(name)
            state, info = self.store.read(name, version)
            offsets = self.registry.offsets_for(current)
            model = self.registry.reset_model(name)
            model.restore_state(state)
            model.offsets = offsets
            model.model_version = current.model_version + 1
            after = self.lifecycle.take(model)
        await self.topic.publish_or_log(after)  # whichever node holds it next must see it
        return model, info
