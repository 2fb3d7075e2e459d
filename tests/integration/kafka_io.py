"""Reading and writing contract topics directly, as any Kafka client would.

Each helper takes the security keyword arguments of every aiokafka client as
``**client_options`` (see :func:`streams.credentials.client_options`); without them it
connects in plaintext, as against the session's plain broker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def create_topic(
    bootstrap: str, topic: str, partitions: int = 1, **client_options: Any
) -> None:
    """Create ``topic`` (replication 1)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def produce(
    bootstrap: str, topic: str, values: list[bytes], key: bytes, **client_options: Any
) -> None:
    """Write raw values in order, acks=all."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **client_options
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str,
    topic: str,
    count: int,
    timeout: float = 60.0,
    until: Callable[[list[Any]], bool] | None = None,
    **client_options: Any,
) -> list[Any]:
    """Decode JSON values from the start of ``topic`` until ``count`` are read (or the values
    read so far satisfy ``until``), or time is up."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options,
    )
    await consumer.start()
    values: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                values.extend(orjson.loads(r.value) for r in records)
            if until is not None and until(values):
                break
    finally:
        await consumer.stop()
    return values


def run(coroutine: Any) -> Any:
    """Run a coroutine from a synchronous test."""
    return asyncio.run(coroutine)
