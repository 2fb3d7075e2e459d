"""The ``learn`` and ``label`` agents: messages through the models, results published."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from streams.agents.publish import publish
from streams.learning.registry import Outcome

if TYPE_CHECKING:
    from streams.node import Node

#: A batch is learned in slices of this much CPU time, yielding to the loop in between, so
#: HTTP requests are answered while a large batch is being learned.
SLICE_SECONDS = 0.005


async def _run(handle: Callable[..., Iterator[Outcome]], event: Any) -> Outcome:
    """Handle one message in slices; the whole outcome."""
    message = event.message
    outcome = Outcome()
    for outcome in handle(  # noqa: B007 (each is the outcome so far; the last is whole)
        event.value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        now=time.time(),
        slice_seconds=SLICE_SECONDS,
    ):
        await asyncio.sleep(0)
    return outcome


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
            async with recovery.lock:  # a snapshot never sees half a message
                outcome = await _run(registry.iter_events, event)
            await publish(topics, outcome, event.message.key)
            for model in outcome.snapshot_due:
                await recovery.take_and_publish(model)

    @node.app.agent(topics.labels_topic, name="label")  # type: ignore[untyped-decorator]
    async def label(stream: Any) -> None:
        async for event in stream.events():
            async with recovery.lock:
                outcome = await _run(registry.iter_labels, event)
            await publish(topics, outcome, event.message.key)
            for model in outcome.snapshot_due:
                await recovery.take_and_publish(model)
