"""The ``learn`` and ``label`` agents: messages through the models, results published."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import Counter

from streams.agents.move import Mover
from streams.agents.publish import Publisher
from streams.gate import RequestGate
from streams.learning.model import OnlineModel
from streams.learning.records import REROUTED_FROM
from streams.learning.registry import ModelRegistry, Outcome
from streams.rebalance import Lifecycle
from streams.topics import Topics

#: Messages are taken from the stream up to this many at a time (or what arrived within
#: ``TAKE_WITHIN`` seconds): Faust's per-message cost is then paid once per take.
TAKE_MAX = 500
TAKE_WITHIN = 0.005
#: Learning runs in slices of this much time. Between slices it lets the loop run, and while
#: HTTP requests are in flight it keeps yielding until they are answered
#: (:meth:`streams.gate.RequestGate.pause`).
SLICE_SECONDS = 0.005

logger = logging.getLogger(__name__)

Handle = Callable[..., Iterator[Outcome | None]]
#: ``seek(tp, offset)``: make the consumer fetch ``tp`` from ``offset`` next.
Seek = Callable[[Any, int], Awaitable[None]]


class Learner:
    """Takes messages from a stream, runs them through the models in slices, publishes.

    Both agents run on the worker's one event loop, so a model is never touched by two at
    once; the lifecycle's lock keeps snapshots between messages, never inside one.
    """

    def __init__(
        self,
        topics: Topics,
        lifecycle: Lifecycle,
        gate: RequestGate,
        seek: Seek,
        crashes: Counter,
        max_event_bytes: int,
        on_created: Callable[[list[OnlineModel]], Awaitable[None]] | None = None,
    ) -> None:
        self.topics = topics
        self.max_event_bytes = max_event_bytes
        self.lifecycle = lifecycle
        self.gate = gate
        self.seek = seek
        self.crashes = crashes
        #: Told of the models a template made, before anything is snapshotted past them.
        self.on_created = on_created

    async def consume(self, stream: Any, handle: Handle, agent: str, source: Any) -> None:
        """Learn every take of ``stream`` (read from topic ``source``) with ``handle``; a take
        that fails is redelivered."""
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            try:
                await self.learn_take(events, handle, source)
            except Exception:  # counted, logged, and the take redelivered
                # Data never gets here (the registry dead-letters it); a broker or disk
                # failure does. Restarting the agent would lose the rest of the take, so the
                # consumer goes back to its first message; dedupe keeps what was learned once.
                self.crashes.inc()
                logger.exception("the %s agent failed on a take; it is redelivered", agent)
                await self.redeliver(events)

    async def redeliver(self, events: list[Any]) -> None:
        """Seek each partition of the take back to its first message."""
        first: dict[Any, int] = {}
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            first[tp] = min(offset, first.get(tp, offset))
        for tp, offset in first.items():
            await self.seek(tp, offset)

    async def learn_take(self, events: list[Any], handle: Handle, source: Any) -> None:
        """Each message through ``handle``, in slices of :data:`SLICE_SECONDS`; predictions,
        detections, promotions and dead letters published; snapshots taken when due.
        Misplaced elements are written again to their model's partition of ``source``, and
        the take ends once the broker has them."""
        publisher = Publisher(self.topics)
        mover = Mover(self.max_event_bytes)
        since = time.perf_counter()
        for event in events:
            message = event.message
            async with self.lifecycle.lock:  # a snapshot never sees half a message
                outcome = Outcome()
                for step in handle(
                    event.value,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    now=time.time(),
                    slice_seconds=SLICE_SECONDS - (time.perf_counter() - since),
                    rerouted=_rerouted(message.headers),
                ):
                    if step is None:  # the slice ran out inside a large message
                        publisher.flush()
                        await self.gate.pause()
                        since = time.perf_counter()
                    else:
                        outcome = step
                publisher.add(outcome, message.key)
                mover.add(outcome.reroutes, source)
            if outcome.created and self.on_created is not None:
                await self.on_created(outcome.created)
            if outcome.snapshot_due:
                # A snapshot's offsets count every message before it as done.
                await mover.delivered()
            for model in outcome.snapshot_due:
                await self.lifecycle.take_and_publish(model)
            if time.perf_counter() - since >= SLICE_SECONDS:
                publisher.flush()
                await self.gate.pause()
                since = time.perf_counter()
        publisher.flush()
        # Faust commits the take's offsets once this returns.
        await mover.delivered()


def _rerouted(headers: Any) -> bool:
    """Whether a message is a copy another node moved here (it carries the header)."""
    if not headers:
        return False
    pairs = headers.items() if isinstance(headers, dict) else headers
    return any(name == REROUTED_FROM for name, _ in pairs)


def register_learn_agents(
    app: Any, topics: Topics, registry: ModelRegistry, learner: Learner
) -> None:
    """Attach the agents on ``events`` and ``labels`` to the Faust app."""

    @app.agent(topics.events_topic, name="learn")  # type: ignore[untyped-decorator]
    async def learn(stream: Any) -> None:
        await learner.consume(stream, registry.iter_events, "learn", topics.events_topic)

    @app.agent(topics.labels_topic, name="label")  # type: ignore[untyped-decorator]
    async def label(stream: Any) -> None:
        await learner.consume(stream, registry.iter_labels, "label", topics.labels_topic)
