"""The ``learn`` and ``label`` agents: messages through the models, results published."""

from __future__ import annotations

import asyncio
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
from streams.learning.snapshots import SnapshotInfo
from streams.rebalance import Lifecycle
from streams.topics import Topics

#: Messages are taken from the stream up to this many at a time (or what arrived within
#: ``TAKE_WITHIN`` seconds): Faust's per-message cost is then paid once per take. A backlog
#: fills takes at once; a trickle waits at most ``TAKE_WITHIN`` (part of its latency).
TAKE_MAX = 500
TAKE_WITHIN = 0.002
#: The ``labels`` agent waits longer: a label publishes nothing, so it has no latency to keep
#: down, and an agent on an empty stream wakes every time its wait runs out (with the events
#: agent's wait, 500 times a second: a few percent of a core, taken from learning).
LABELS_TAKE_WITHIN = 0.05
#: Learning runs in slices of this much time. Between slices it lets the loop run, and while
#: HTTP requests are in flight it keeps yielding until they are answered
#: (:meth:`streams.gate.RequestGate.pause`). A request that arrives mid-slice waits for the
#: rest of it, so the slice bounds what learning adds to a request's latency.
SLICE_SECONDS = 0.002
#: Predictions are written once this much time has passed since they last were: between
#: slices, and at the end of a take while its partition has more messages waiting on the
#: broker (a backlog: a predictions message per take would cost more than learning the
#: take). A take that reaches the end of its partition writes them at once, so a stream the
#: node keeps up with never waits for this.
FLUSH_SECONDS = 0.05

logger = logging.getLogger(__name__)

Handle = Callable[..., Iterator[Outcome | None]]
#: ``seek(tp, offset)``: make the consumer fetch ``tp`` from ``offset`` next.
Seek = Callable[[Any, int], Awaitable[None]]
#: ``highwater(tp)``: the offset the broker will give the next message of ``tp``, as last
#: heard from it (``None`` before its first fetch).
Highwater = Callable[[Any], "int | None"]


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
        #: The predictions of both agents, collected until written (:meth:`flush`).
        self.publisher = Publisher(topics)
        self._flushed = time.perf_counter()
        self._flush_later: asyncio.TimerHandle | None = None

    async def consume(
        self, stream: Any, handle: Handle, agent: str, source: Any, within: float = TAKE_WITHIN
    ) -> None:
        """Learn every take of ``stream`` (read from topic ``source``, taken ``within`` seconds
        at most) with ``handle``; a take that fails is redelivered."""
        highwater = _highwater(stream)
        try:
            async for events in stream.take_events(TAKE_MAX, within=within):
                try:
                    await self.learn_take(events, handle, source, highwater)
                except Exception:  # counted, logged, and the take redelivered
                    # Data never gets here (the registry dead-letters it); a broker or disk
                    # failure does. Restarting the agent would lose the rest of the take, so
                    # the consumer goes back to its first message; dedupe keeps what was
                    # learned once.
                    self.crashes.inc()
                    logger.exception("the %s agent failed on a take; it is redelivered", agent)
                    await self.redeliver(events)
        finally:
            self.flush()  # an agent that stops leaves no prediction unwritten

    def _snapshot_written(self, written: asyncio.Task[SnapshotInfo]) -> None:
        """A background snapshot failed: counted and logged (its model is due again)."""
        if not written.cancelled() and (exc := written.exception()) is not None:
            self.crashes.inc()
            logger.error("a snapshot failed; it is taken again", exc_info=exc)

    async def redeliver(self, events: list[Any]) -> None:
        """Seek each partition of the take back to its first message."""
        first: dict[Any, int] = {}
        for event in events:
            tp, offset = event.message.tp, event.message.offset
            first[tp] = min(offset, first.get(tp, offset))
        for tp, offset in first.items():
            await self.seek(tp, offset)

    async def learn_take(
        self, events: list[Any], handle: Handle, source: Any, highwater: Highwater | None = None
    ) -> None:
        """Each message through ``handle``, in slices of :data:`SLICE_SECONDS`; predictions,
        detections, promotions and dead letters published; snapshots taken when due.
        Misplaced elements are written again to their model's partition of ``source``, and
        the take ends once the broker has them. The predictions are written at the end,
        unless ``highwater`` says more messages wait (:data:`FLUSH_SECONDS`)."""
        publisher = self.publisher
        mover = Mover(self.max_event_bytes)
        # The messages of a slice share its time: a model formats it once, not per message.
        since, now = time.perf_counter(), time.time()
        for event in events:
            message = event.message
            async with self.lifecycle.lock:  # a snapshot never sees half a message
                outcome = Outcome()
                for step in handle(
                    event.value,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    now=now,
                    slice_seconds=SLICE_SECONDS,
                    slice_started=since,
                    rerouted=_rerouted(message.headers),
                ):
                    if step is None:  # the slice ran out inside a large message
                        self.flush_if_due()
                        await self.gate.pause()
                        since, now = time.perf_counter(), time.time()
                    else:
                        outcome = step
                publisher.add(outcome, message.key)
                if outcome.reroutes:
                    mover.add(outcome.reroutes, source)
            if outcome.created and self.on_created is not None:
                await self.on_created(outcome.created)
            if outcome.snapshot_due:
                # A snapshot's offsets count every message before it as done: their copies
                # are on the broker, their predictions on their way.
                self.flush()
                await mover.delivered()
                for model in outcome.snapshot_due:
                    # Captured now, written and published in the background (after the one
                    # before it, if that is still being written).
                    written = await self.lifecycle.snapshot_soon(model)
                    written.add_done_callback(self._snapshot_written)
            if time.perf_counter() - since >= SLICE_SECONDS:
                self.flush_if_due()
                await self.gate.pause()
                since, now = time.perf_counter(), time.time()
        if highwater is not None and _behind(events[-1].message, highwater):
            self.flush_if_due(later=True)
        else:
            self.flush()
        # Faust commits the take's offsets once this returns.
        await mover.delivered()

    def flush(self) -> None:
        """Write the predictions collected."""
        if self._flush_later is not None:
            self._flush_later.cancel()
            self._flush_later = None
        self.publisher.flush()
        self._flushed = time.perf_counter()

    def flush_if_due(self, *, later: bool = False) -> None:
        """Write the predictions collected if :data:`FLUSH_SECONDS` have passed since they
        last were; if not and ``later``, once they have (unless a take does it first)."""
        wait = self._flushed + FLUSH_SECONDS - time.perf_counter()
        if wait <= 0:
            self.flush()
        elif later and self._flush_later is None:
            self._flush_later = asyncio.get_running_loop().call_later(wait, self.flush)


def _highwater(stream: Any) -> Highwater | None:
    """What tells the end of a partition of ``stream``: its Faust app's consumer (``None``
    for a stream that has none)."""
    app = getattr(stream, "app", None)
    consumer = getattr(app, "consumer", None)
    return getattr(consumer, "highwater", None)


def _behind(message: Any, highwater: Highwater) -> bool:
    """Whether the broker has more messages of ``message``'s partition after it."""
    try:
        end = highwater(message.tp)
    except (AssertionError, KeyError):  # aiokafka asserts the partition is still assigned
        return False
    return end is not None and message.offset + 1 < end


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
        await learner.consume(
            stream, registry.iter_labels, "label", topics.labels_topic, LABELS_TAKE_WITHIN
        )
