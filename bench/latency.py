"""Latency as a client sees it: from sending an event to reading its prediction, and of
``POST /models/{name}/predict``."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from harness import Node, percentiles, rows
from in_process import Data

from streams.credentials import client_options
from streams.settings import Settings


async def prediction_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer of the predictions topic, assigned every partition and at their end before
    anything is sent (so no prediction of the run can be missed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    topic = settings.topic_name("predictions")
    # Every topic of the node has STREAMLEARN_TOPIC_PARTITIONS partitions (see topics.py).
    consumer.assign([TopicPartition(topic, p) for p in range(settings.topic_partitions)])
    await consumer.seek_to_end()
    return consumer


async def send_at(
    producer: AIOKafkaProducer, topic: str, name: str, data: Data, rate: float,
    sent: dict[str, float],
) -> float:  # fmt: skip
    """Send ``data`` as single-event messages at ``rate``, noting when each was sent; the
    rate reached."""
    started = time.perf_counter()
    for i, (x, y) in enumerate(data):
        event_id = f"lat-{uuid.uuid4().hex[:8]}-{i}"
        sent[event_id] = time.perf_counter()
        value = orjson.dumps({"event_id": event_id, "model": name, "features": x, "label": y})
        await producer.send(topic, value, key=name.encode())
        delay = (i + 1) / rate - (time.perf_counter() - started)
        if delay > 0:
            await asyncio.sleep(delay)
    return len(data) / (time.perf_counter() - started)


async def latencies_at(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, settings: Settings, name: str,
    data: Data, rate: float,
) -> tuple[list[float], float]:  # fmt: skip
    """Seconds from sending each event to reading its prediction, and the rate sent."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    topic = settings.topic_name("events")
    sender = asyncio.create_task(send_at(producer, topic, name, data, rate, sent))
    quiet_since = time.perf_counter()
    while len(latencies) < len(data):
        batches = await consumer.getmany(timeout_ms=200)
        now = time.perf_counter()
        for records in batches.values():
            for record in records:
                value = orjson.loads(record.value)
                for p in value if isinstance(value, list) else [value]:
                    if p["event_id"] in sent:
                        latencies.append(now - sent[p["event_id"]])
                        quiet_since = now
        if sender.done() and now - quiet_since > 30:
            raise RuntimeError(f"{len(data) - len(latencies)} predictions never came")
    return latencies, await sender


async def end_to_end(node: Node, name: str, rate: float, n: int) -> dict[str, float]:
    """Single-event messages sent at ``rate``: latency from sending each to reading its
    prediction. A warm-up of 200 events at 100/s comes first, not counted (the node's first
    seconds after it is ready are not its steady state)."""
    consumer = await prediction_consumer(node.settings)
    producer = AIOKafkaProducer(
        bootstrap_servers=node.settings.kafka_bootstrap_servers,
        acks="all",
        **client_options(node.settings),
    )
    await producer.start()
    try:
        await latencies_at(consumer, producer, node.settings, name, rows(200), 100.0)
        latencies, sent_rate = await latencies_at(
            consumer, producer, node.settings, name, rows(n), rate
        )
    finally:
        await producer.stop()
        await consumer.stop()
    # Latencies come in the order events were sent: a last tenth slower than the whole says
    # the node fell behind the rate.
    return {
        **percentiles(latencies),
        "max_ms": 1000 * max(latencies),
        "p50_last_tenth_ms": percentiles(latencies[-len(latencies) // 10 :])["p50_ms"],
        "sent_per_s": sent_rate,
    }


def http_predict(url: str, name: str, seconds: float) -> dict[str, float]:
    """Latency of ``POST /models/{name}/predict``, one client sending back to back for
    ``seconds``; and the requests per second it reached."""
    x = rows(1)[0][0]
    samples: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            client.post(f"/models/{name}/predict", json={"features": x}).raise_for_status()
            samples.append(time.perf_counter() - started)
    return {**percentiles(samples), "requests_per_s": len(samples) / seconds}
