"""The Faust application of a node, with an idempotent, acks=all producer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.settings import Settings


class _IdempotentProducer(aiokafka_driver.Producer):  # type: ignore[misc]
    """Every write waits for all in-sync replicas and is deduplicated by the broker."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _RestoringConsumer(aiokafka_driver.Consumer):  # type: ignore[misc]
    """Resumes where the node's snapshots say, not where the group last committed.

    Faust calls ``seek_to_committed`` on every assignment, with the streams paused; the app's
    ``resume_positions`` hook restores models and names the offsets to seek to instead.
    """

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

    resume_positions: (
        Callable[[set[Any], Mapping[Any, int]], Awaitable[Mapping[Any, int]]] | None
    ) = None

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return _Transport(self.conf.broker_producer, self)


def create_faust_app(settings: Settings) -> StreamlearnApp:
    """Construct the Faust app for ``settings``; agents and topics are added by the node."""
    datadir = settings.state_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    return StreamlearnApp(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.max_message_bytes,
        datadir=str(datadir),
        store="memory://",
        web_bind=settings.http_host,
        web_port=settings.http_port,
        web_host=settings.http_host,
        canonical_url=settings.node_url,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.session_timeout_seconds / 5,
    )
