"""The ``learn`` and ``label`` agents: messages through the models, results published."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from streams.agents.publish import Publisher
from streams.learning.registry import Outcome

if TYPE_CHECKING:
    from streams.node import Node

#: Messages are taken from the stream up to this many at a time (or what arrived within
#: ``TAKE_WITHIN`` seconds): Faust's per-message cost is then paid once per take.
TAKE_MAX = 500
TAKE_WITHIN = 0.005
#: Learning runs in slices of this much time, then pauses for ``PAUSE_SECONDS`` so that the
#: loop answers HTTP requests while a large batch is being learned (a bare ``sleep(0)`` gives
#: the loop one iteration, and a request needs several).
SLICE_SECONDS = 0.005
PAUSE_SECONDS = 0.0005

Handle = Callable[..., Iterator[Outcome | None]]


def register_learn_agents(node: Node) -> None:
    """Attach the agents on ``events`` and ``labels`` to the node's Faust app.

    Both run on the worker's one event loop, so a model is never touched by two at once;
    the recovery lock keeps snapshots between messages, never inside one.
    """
    registry = node.registry
    topics = node.topics
    recovery = node.recovery

    async def consume(stream: Any, handle: Handle) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            due = []
            publisher = Publisher(topics)
            async with recovery.lock:
                since = time.perf_counter()
                for event in events:
                    message = event.message
                    outcome = Outcome()
                    for step in handle(
                        event.value,
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                        now=time.time(),
                        slice_seconds=SLICE_SECONDS - (time.perf_counter() - since),
                    ):
                        if step is None or time.perf_counter() - since >= SLICE_SECONDS:
                            await asyncio.sleep(PAUSE_SECONDS)
                            since = time.perf_counter()
                        if step is not None:
                            outcome = step
                    publisher.add(outcome, message.key)
                    due += [m for m in outcome.snapshot_due if m not in due]
                publisher.flush()
            for model in due:
                await recovery.take_and_publish(model)

    @node.app.agent(topics.events_topic, name="learn")  # type: ignore[untyped-decorator]
    async def learn(stream: Any) -> None:
        await consume(stream, registry.iter_events)

    @node.app.agent(topics.labels_topic, name="label")  # type: ignore[untyped-decorator]
    async def label(stream: Any) -> None:
        await consume(stream, registry.iter_labels)
