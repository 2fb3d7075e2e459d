"""Reading the latest snapshot of each model from the end of a snapshots partition."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.snapshot_topic import latest_values
from tests.integration.kafka_io import create_topic, run

pytestmark = pytest.mark.integration


async def write_and_read(bootstrap: str) -> tuple[dict[str, bytes], int]:
    topic = f"snapshots-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"old-a", key=b"a")
        for i in range(60):  # many snapshots of b and c after a's only one
            await producer.send_and_wait(topic, f"v{i}".encode(), key=b"bc"[i % 2 : i % 2 + 1])
        await producer.send_and_wait(topic, b"other", key=b"z")
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        found = await latest_values(consumer, tp, 0, 62, {b"a", b"b", b"c"})
        only_recent = await latest_values(consumer, tp, 0, 62, {b"b"})
    finally:
        await consumer.stop()
    return found, len(only_recent)


def test_the_last_value_of_each_key_is_found_however_far_back(kafka: str) -> None:
    found, n = run(write_and_read(kafka))
    # a's only value is 61 records back: the windows grow until they reach it.
    assert found == {"a": b"old-a", "b": b"v58", "c": b"v59"}
    assert n == 1
