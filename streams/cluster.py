"""The consumer group as this node's Faust app sees it; the one module that reaches into Faust.

Everything that depends on Faust's internals lives here: the transport whose producer is
idempotent and whose consumer resumes where the node's snapshots say, and :class:`Cluster`,
which reads the assignment, the group's members (from Faust's partition assignor), the
high-water marks and the rebalancing flag, seeks the consumer, and connects the node's
rebalance hooks. Other modules ask a :class:`Cluster`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

#: ``resume_positions(assigned, committed)``: where each assigned partition resumes.
ResumeHook = Callable[[set[Any], Mapping[Any, int]], Awaitable[Mapping[Any, int]]]


class _IdempotentProducer(aiokafka_driver.Producer):  # type: ignore[misc]
    """Every write waits for all in-sync replicas and is deduplicated by the broker."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


#: How long the broker may hold a fetch that has nothing to return yet. Faust hard-codes
#: 1,500 ms, and aiokafka keeps one fetch in flight per broker: a partition left out of it
#: (its last records were still being taken) waited for that fetch to come back, so a
#: stream of single-event messages at 1,000/s saw its latency jump to seconds.
FETCH_MAX_WAIT_MS = 10


class _ConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):  # type: ignore[misc]
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts
        return consumer


class _RestoringConsumer(aiokafka_driver.Consumer):  # type: ignore[misc]
    """Resumes where the node's snapshots say, not where the group last committed.

    Faust calls ``seek_to_committed`` on every assignment, with the streams paused; the app's
    ``resume_positions`` hook restores models and names the offsets to seek to instead.
    """

    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed = dict(await super().seek_to_committed())
        hook = getattr(self.app, "resume_positions", None)
        if hook is not None:
            for tp, offset in (await hook(self.assignment(), committed)).items():
                await self._seek(tp, offset)
                committed[tp] = offset
        return committed


class _Transport(aiokafka_driver.Transport):  # type: ignore[misc]
    Producer = _IdempotentProducer
    Consumer = _RestoringConsumer


class StreamlearnApp(faust.App):  # type: ignore[misc]
    """A ``faust.App`` whose producer is idempotent (Faust enables it only with transactions)
    and whose consumer resumes at the offsets ``resume_positions`` returns."""

    resume_positions: ResumeHook | None = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


class Cluster:
    """This node's view of its consumer group, through its Faust app."""

    def __init__(self, app: Any) -> None:
        self._app = app
        #: The URL the group knows this node by, as Faust normalised it (``http://h:80`` is
        #: ``http://h``): the form peers see, and this node's name in ``owner`` fields.
        self.url = str(app.conf.canonical_url)

    @property
    def started(self) -> bool:
        """The Kafka consumer exists (it is created when the worker starts)."""
        return self._consumer() is not None

    @property
    def rebalancing(self) -> bool:
        """The group is rebalancing: a node joined or left, partitions are moving."""
        return bool(self._app.rebalancing)

    def assignment(self) -> set[Any]:
        """The partitions the consumer holds now (none before it has started)."""
        consumer = self._consumer()
        return set(consumer.assignment()) if consumer is not None else set()

    def distribution(self) -> Mapping[str, Mapping[str, list[int]]]:
        """Every member's URL, with the partitions of each topic it holds, as Faust's assignor
        last told this node (its ``external_topics_metadata``)."""
        distribution: Mapping[str, Mapping[str, list[int]]] = (
            self._app.assignor.external_topics_metadata() or {}
        )
        return distribution

    def highwater(self, tp: Any) -> int | None:
        """The partition's high-water mark (``None`` before its first fetch)."""
        consumer = self._consumer()
        try:
            value = consumer.highwater(tp)
        except (AssertionError, KeyError, AttributeError):  # not fetched yet, or not started
            return None
        return int(value) if value is not None else None

    async def seek(self, tp: Any, offset: int) -> None:
        """Make the consumer fetch ``tp`` from ``offset`` next."""
        await self._app.consumer.seek(tp, offset)

    def on_rebalance(
        self,
        *,
        resume: ResumeHook,
        revoked: Callable[[], Awaitable[None]],
        assigned: Callable[[set[Any]], None],
    ) -> None:
        """Connect the node's hooks: ``resume`` names where each assigned partition resumes;
        ``revoked`` runs before partitions are revoked (aiokafka rebalances eagerly: every
        partition is revoked, then the new assignment comes) and before a clean shutdown;
        ``assigned`` gets each new assignment."""
        app = self._app
        app.resume_positions = resume

        @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
        async def hand_over_on_revocation(sender: Any, revoked_: Any, **kwargs: Any) -> None:
            await revoked()

        @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
        async def drop_what_moved(sender: Any, assigned_: Any, **kwargs: Any) -> None:
            assigned(set(assigned_))

        @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
        async def hand_over_on_shutdown(sender: Any, **kwargs: Any) -> None:
            await revoked()

    def on_shutdown(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Run ``hook`` when the worker stops cleanly (after the hand-over)."""

        @self._app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
        async def run_on_shutdown(sender: Any, **kwargs: Any) -> None:
            await hook()

    def _consumer(self) -> Any:
        # Faust creates its consumer on first use of ``app.consumer``: read, never create.
        return getattr(self._app, "_consumer", None)
