"""Latency as a client sees it: from sending an event to reading its prediction, and of
``POST /models/{name}/predict``; and the floors under both, measured the same way.

The floors say what the goals can be judged against on this machine, where the broker, the
node and this client share the cores:

- Kafka floor: a plain aiokafka consumer and producer in a process of their own, echoing
  each event as a tiny record to another topic (the node's producer settings: acks=all,
  idempotent). What the broker and the clients cost, with nothing of Faust or the node.
- Faust floor: a Faust app built by the node's own ``create_faust_app`` (its consumer and
  producer settings) whose agent takes events as the learn agent does
  (``take_events(TAKE_MAX, within=TAKE_WITHIN)``) and echoes the ids of each take in one
  record with ``send_soon``, as the node publishes the predictions of a take.
  The node's end-to-end latency minus this one is what learning and publishing add.
- HTTP floor: a FastAPI app on uvicorn alone answering a predict-shaped route, idle and
  while another process burns one core (as much CPU as a node learning flat out uses). Its
  ratio is what CPU contention on this machine costs a request with no loop blocking at
  all. The node idle with the same hog is measured too: the node's HTTP path under
  contention, without learning on its loop.

Each floor runs in a process of its own, as the node does, started by this module:
    python bench/latency.py echo {kafka|faust} BOOTSTRAP IN_TOPIC OUT_TOPIC
    python bench/latency.py http PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from harness import Node, free_port, kafka_options, percentiles, rows
from in_process import Data
from pydantic import BaseModel

from streams.settings import Settings

#: Events sent at 100/s before every measured run, not counted: a consumer's first seconds
#: (joining its group, its first fetches) are not its steady state.
WARM_UP = 200


async def tail_consumer(bootstrap: str, topic: str, partitions: int) -> AIOKafkaConsumer:
    """A consumer of ``topic``, assigned every partition and at their end before anything
    is sent (so no record of the run can be missed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **kafka_options()
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    await consumer.seek_to_end()
    return consumer


async def prediction_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A consumer at the end of the predictions topic (every topic of the node has
    STREAMLEARN_TOPIC_PARTITIONS partitions, see topics.py)."""
    return await tail_consumer(
        settings.kafka_bootstrap_servers, settings.topic_name("predictions"),
        settings.topic_partitions,
    )  # fmt: skip


def bench_producer(bootstrap: str) -> AIOKafkaProducer:
    """The producer the client sends events with: acks=all, no linger (aiokafka's default)."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kafka_options())


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
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, topic: str, name: str,
    data: Data, rate: float,
) -> tuple[list[float], float]:  # fmt: skip
    """Seconds from sending each event to ``topic`` to reading what answers it (a record,
    or an array of them, carrying its ``event_id``) from ``consumer``; and the rate sent."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
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
            raise RuntimeError(f"{len(data) - len(latencies)} answers never came")
    return latencies, await sender


async def timed_run(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, topic: str, name: str,
    rate: float, n: int,
) -> dict[str, float]:  # fmt: skip
    """The warm-up, then ``n`` single-event messages at ``rate``: the percentiles."""
    await latencies_at(consumer, producer, topic, name, rows(WARM_UP), 100.0)
    latencies, sent_rate = await latencies_at(consumer, producer, topic, name, rows(n), rate)
    # Latencies come in the order events were sent: a last tenth slower than the whole says
    # the node fell behind the rate.
    return {
        **percentiles(latencies),
        "max_ms": 1000 * max(latencies),
        "p50_last_tenth_ms": percentiles(latencies[-len(latencies) // 10 :])["p50_ms"],
        "sent_per_s": sent_rate,
    }


async def end_to_end(node: Node, name: str, rate: float, n: int) -> dict[str, float]:
    """Single-event messages sent at ``rate``: latency from sending each to reading its
    prediction, after the warm-up."""
    consumer = await prediction_consumer(node.settings)
    producer = bench_producer(node.settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        topic = node.settings.topic_name("events")
        return await timed_run(consumer, producer, topic, name, rate, n)
    finally:
        await producer.stop()
        await consumer.stop()


async def _create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1) for name in names])
    finally:
        await admin.close()


def echo_floor(bootstrap: str, kind: str, rate: float, n: int, partitions: int) -> dict[str, Any]:
    """The Kafka (``kind`` "kafka") or Faust ("faust") floor: end-to-end latency through an
    echo process instead of a node, measured exactly as :func:`end_to_end` measures a node
    (same client, topics of as many partitions as the node's)."""
    tag = uuid.uuid4().hex[:8]
    source, sink = f"floor-{tag}-in", f"floor-{tag}-out"
    asyncio.run(_create_topics(bootstrap, [source, sink], partitions))
    echo = subprocess.Popen(
        [sys.executable, __file__, "echo", kind, bootstrap, source, sink],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    async def measure() -> dict[str, float]:
        consumer = await tail_consumer(bootstrap, sink, partitions)
        producer = bench_producer(bootstrap)
        await producer.start()
        try:
            return await timed_run(consumer, producer, source, "m", rate, n)
        finally:
            await producer.stop()
            await consumer.stop()

    try:
        return asyncio.run(measure())
    finally:
        echo.kill()  # nothing to save; a Faust worker may linger on SIGTERM
        echo.wait()


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


@contextlib.contextmanager
def cpu_hog(seconds: float) -> Iterator[None]:
    """Another process burning one core for the block (at most ``seconds``)."""
    burn = f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
    hog = subprocess.Popen([sys.executable, "-c", burn])
    try:
        time.sleep(0.2)  # running before the first request
        yield
    finally:
        hog.kill()
        hog.wait()


def http_floor(seconds: float) -> dict[str, dict[str, float]]:
    """Predict-shaped requests to a FastAPI app alone on uvicorn: idle, and with one core
    burned by another process."""
    port = free_port()
    app = subprocess.Popen([sys.executable, __file__, "http", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/docs", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        http_predict(url, "m", 1)  # warm-up
        idle = http_predict(url, "m", seconds)
        with cpu_hog(seconds + 5):
            hog = http_predict(url, "m", seconds)
        return {"idle": idle, "one_core_burned": hog}
    finally:
        app.kill()
        app.wait()


# The floors' processes.


async def _kafka_echo(bootstrap: str, source: str, sink: str) -> None:
    """Each event of ``source`` echoed to ``sink`` as ``{"event_id": ...}``."""
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap, group_id=f"floor-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest", **kafka_options(),
    )  # fmt: skip
    # The node's producer: acks=all and idempotent (streams/cluster.py), no linger.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **kafka_options()
    )
    await consumer.start()
    await producer.start()
    async for record in consumer:
        value = orjson.dumps({"event_id": orjson.loads(record.value)["event_id"]})
        await producer.send(sink, value, key=record.key)  # buffered, not waited for


def _faust_echo(bootstrap: str, source: str, sink: str) -> None:
    """The same echo as a Faust agent of an app configured as the node's."""
    import faust

    from streams.agents.learn import TAKE_MAX, TAKE_WITHIN
    from streams.app import create_faust_app

    settings = Settings(
        kafka_bootstrap_servers=bootstrap, app_id=f"floor-{uuid.uuid4().hex[:8]}",
        state_dir=Path(tempfile.mkdtemp(prefix="streamlearn-floor-")), http_port=free_port(),
    )  # fmt: skip
    app = create_faust_app(settings)
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw",
           "value_serializer": "raw"}  # fmt: skip
    source_topic, sink_topic = app.topic(source, **raw), app.topic(sink, **raw)

    @app.agent(source_topic)  # type: ignore[untyped-decorator]
    async def echo(stream: Any) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            # One record per take, as the node publishes its predictions (a Faust send per
            # event costs more than 1 ms of this loop: it could not keep up with 1,000/s).
            ids = [{"event_id": orjson.loads(event.value)["event_id"]} for event in events]
            sink_topic.send_soon(key=events[0].message.key, value=orjson.dumps(ids))

    worker = faust.Worker(app, loglevel="error", quiet=True)
    worker.spinner = None
    worker.execute_from_commandline()


class FloorPredictIn(BaseModel):
    features: dict[str, Any]


class FloorPredictOut(BaseModel):
    model: str
    prediction: int


def _http_app(port: int) -> None:
    """A FastAPI app on uvicorn with nothing but a predict-shaped route."""
    import uvicorn
    from fastapi import FastAPI

    api = FastAPI()

    @api.post("/models/{name}/predict")
    async def predict(name: str, payload: FloorPredictIn) -> FloorPredictOut:
        return FloorPredictOut(model=name, prediction=len(payload.features) % 2)

    uvicorn.run(api, host="127.0.0.1", port=port, log_level="warning")


def main(argv: list[str]) -> None:
    if argv[0] == "echo":
        kind, bootstrap, source, sink = argv[1:5]
        if kind == "kafka":
            asyncio.run(_kafka_echo(bootstrap, source, sink))
        else:
            _faust_echo(bootstrap, source, sink)
    elif argv[0] == "http":
        _http_app(int(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
