"""The ``learn`` and ``label`` agents: messages through the models, results published."""

from __future__ import annotations

import asyncio
import logging
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

logger = logging.getLogger(__name__)

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

    async def consume(stream: Any, handle: Handle, agent: str) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            try:
                await learn_take(events, handle)
            except Exception:  # counted, logged, and the take redelivered
                # Data never gets here (the registry dead-letters it); a broker or disk
                # failure does. Restarting the agent would lose the rest of the take, so the
                # consumer goes back to its first message; dedupe keeps what was learned once.
                if node.agent_crashes is not None:
                    node.agent_crashes.inc()
                logger.exception("the %s agent failed on a take; it is redelivered", agent)
                await redeliver(events)

    async def redeliver(events: list[Any]) -> None:
        first: dict[Any, int] = {}
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            first[tp] = min(offset, first.get(tp, offset))
        for tp, offset in first.items():
            await node.app.consumer.seek(tp, offset)

    async def learn_take(events: list[Any], handle: Handle) -> None:
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
        await consume(stream, registry.iter_events, "learn")

    @node.app.agent(topics.labels_topic, name="label")  # type: ignore[untyped-decorator]
    async def label(stream: Any) -> None:
        await consume(stream, registry.iter_labels, "label")
