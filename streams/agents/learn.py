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
#: Learning runs in slices of this much time. Between slices it lets the loop run, and while
#: HTTP requests are in flight it keeps yielding until they are answered (a request needs
#: several loop iterations), for at most ``MAX_PAUSE_SECONDS``.
SLICE_SECONDS = 0.005
PAUSE_ITERATIONS = 3
MAX_PAUSE_SECONDS = 0.05

Handle = Callable[..., Iterator[Outcome | None]]


def register_learn_agents(node: Node) -> None:
    """Attach the agents on ``events`` and ``labels`` to the node's Faust app.

    Both run on the worker's one event loop, so a model is never touched by two at once;
    the recovery lock keeps snapshots between messages, never inside one.
    """
    registry = node.registry
    topics = node.topics
    recovery = node.recovery

    async def pause() -> None:
        # A request read from its socket enters the app a couple of loop iterations later;
        # give it those, then keep yielding while requests are in flight.
        for _ in range(PAUSE_ITERATIONS):
            await asyncio.sleep(0)
        deadline = time.perf_counter() + MAX_PAUSE_SECONDS
        while node.http_inflight and time.perf_counter() < deadline:
            await asyncio.sleep(0)

    async def consume(stream: Any, handle: Handle) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            publisher = Publisher(topics)
            since = time.perf_counter()
            for event in events:
                message = event.message
                async with recovery.lock:  # a snapshot never sees half a message
                    outcome = Outcome()
                    for step in handle(
                        event.value,
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                        now=time.time(),
                        slice_seconds=SLICE_SECONDS - (time.perf_counter() - since),
                    ):
                        if step is None:  # the slice ran out inside a large message
                            publisher.flush()
                            await pause()
                            since = time.perf_counter()
                        else:
                            outcome = step
                    publisher.add(outcome, message.key)
                for model in outcome.snapshot_due:
                    await recovery.take_and_publish(model)
                if time.perf_counter() - since >= SLICE_SECONDS:
                    publisher.flush()
                    await pause()
                    since = time.perf_counter()
            publisher.flush()

    @node.app.agent(topics.events_topic, name="learn")  # type: ignore[untyped-decorator]
    async def learn(stream: Any) -> None:
        await consume(stream, registry.iter_events)

    @node.app.agent(topics.labels_topic, name="label")  # type: ignore[untyped-decorator]
    async def label(stream: Any) -> None:
        await consume(stream, registry.iter_labels)
