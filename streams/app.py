"""The Faust application of a node, with an idempotent, acks=all producer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as aiokafka_driver

from streams.settings import Settings


class _IdempotentProducer(aiokafka_driver.Producer):  # type: ignore[misc]
    """Every write waits for all in-sync replicas and is deduplicated by the broker."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _Transport(aiokafka_driver.Transport):  # type: ignore[misc]
    Producer = _IdempotentProducer


class StreamlearnApp(faust.App):  # type: ignore[misc]
    """A ``faust.App`` whose producer is idempotent (Faust enables it only with transactions)."""

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
        datadir=str(datadir),
        store="memory://",
        web_bind=settings.http_host,
        web_port=settings.http_port,
        web_host=settings.http_host,
    )
