"""The ``learn`` and ``label`` agents: messages through the models, results published."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from streams.agents.publish import publish

if TYPE_CHECKING:
    from streams.node import Node


def register_learn_agents(node: Node) -> None:
    """Attach the agents on ``events`` and ``labels`` to the node's Faust app.

    Both run on the worker's one event loop, so a model is never touched by two at once.
    """
    registry = node.registry
    topics = node.topics
    recovery = node.recovery

    @node.app.agent(topics.events_topic, name="learn")  # type: ignore[untyped-decorator]
    async def learn(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            outcome = registry.handle_events(
                event.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                now=time.time(),
            )
            await publish(topics, outcome, message.key)
            for model in outcome.snapshot_due:
                await recovery.take_and_publish(model)

    @node.app.agent(topics.labels_topic, name="label")  # type: ignore[untyped-decorator]
    async def label(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            outcome = registry.handle_labels(
                event.value,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                now=time.time(),
            )
            await publish(topics, outcome, message.key)
            for model in outcome.snapshot_due:
                await recovery.take_and_publish(model)
