"""Events from any producer's partitioner: moved to their model's partition, learned once.

librdkafka's default (``consistent_random``: CRC32 of the key) is what confluent-kafka, kcat,
node-rdkafka and Rust's rdkafka use; a round-robin producer ignores the key altogether. The
node writes each misplaced event again to its model's partition, so every model learns each
of its events once, in the order of that partition, and its metrics equal River's on that
order.
"""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka import Producer
from river import datasets, evaluate, linear_model, metrics, preprocessing

from streams.learning.partitioning import partition_for
from tests.integration.conftest import NodeProcess
from tests.integration.kafka_io import run

pytestmark = pytest.mark.integration

MODELS = ("alpha", "bravo", "charlie", "delta")
PARTITIONS = 12
SPEC = """
[models.{name}]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]
"""


def models_toml() -> str:
    return "".join(SPEC.format(name=name) for name in MODELS)


def phishing(n: int) -> list[tuple[dict[str, Any], bool]]:
    return list(itertools.islice(datasets.Phishing(), n))


def event(model: str, i: int, x: dict[str, Any], y: bool) -> bytes:
    return orjson.dumps({"event_id": f"{model}-{i}", "model": model, "features": x, "label": y})


def interleaved(n: int) -> list[tuple[str, bytes]]:
    """``n`` Phishing events for each model, models taking turns: (model, value)."""
    rows = phishing(n)
    return [(m, event(m, i, x, y)) for i, (x, y) in enumerate(rows) for m in MODELS]


class RoundRobin:
    """An aiokafka partitioner that ignores the key: partitions in turn, as kafka-go does."""

    def __init__(self) -> None:
        self.next = 0

    def __call__(self, key: bytes, all_partitions: Sequence[int], available: Sequence[int]) -> int:
        partition = all_partitions[self.next % len(all_partitions)]
        self.next += 1
        return partition


def produce_with_confluent(bootstrap: str, topic: str, values: list[tuple[str, bytes]]) -> None:
    """confluent-kafka's producer with its default settings (its partitioner included)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    failures: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    for model, value in values:
        producer.produce(topic, value=value, key=model.encode(), on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0 and not failures, failures


async def produce_round_robin(bootstrap: str, topic: str, values: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                enable_idempotence=True, partitioner=RoundRobin())  # fmt: skip
    await producer.start()
    try:
        for model, value in values:
            await producer.send(topic, value, key=model.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def read_partition(bootstrap: str, topic: str, partition: int) -> list[Any]:
    """Every value of one partition, in offset order, each message's elements in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out: list[Any] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                for record in records:
                    value = orjson.loads(record.value)
                    out.extend(value if isinstance(value, list) else [value])
        return out
    finally:
        await consumer.stop()


def river_on_learned_order(node: NodeProcess, model: str) -> dict[str, float]:
    """River's progressive validation on the events of ``model`` as its partition holds
    them, each event id once: the order the node learned them in."""
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    stored = run(read_partition(bootstrap, node.topic("events"),
                                partition_for(model, PARTITIONS)))  # fmt: skip
    seen: set[str] = set()
    ordered = []
    for e in stored:
        if e["model"] == model and e["event_id"] not in seen:
            seen.add(e["event_id"])
            ordered.append((e["features"], e["label"]))
    metric = metrics.Accuracy() + metrics.ROCAUC()
    pipeline = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    evaluate.progressive_val_score(ordered, pipeline, metric)
    return {type(m).__name__: m.get() for m in metric}


def assert_learned_once_as_river(node: NodeProcess, n: int) -> int:
    """Every model learned its ``n`` events once, with River's metrics; the moves counted."""
    rerouted = 0
    for model in MODELS:
        state = node.wait_for(model, "n_learned", n, timeout=120)
        assert state["n_dead_letters"] == 0
        rerouted += int(state["n_rerouted"])  # type: ignore[call-overload]
        served = node.get(f"/models/{model}/metrics").json()["cumulative"]
        expected = river_on_learned_order(node, model)
        assert served["Accuracy"] == pytest.approx(expected["Accuracy"], abs=1e-9)
        assert served["ROCAUC"] == pytest.approx(expected["ROCAUC"], abs=1e-9)
    return rerouted


def test_confluent_kafkas_default_partitioner(start_node: Any) -> None:
    node = start_node(models_toml())
    values = interleaved(300)
    produce_with_confluent(node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
                           node.topic("events"), values)  # fmt: skip
    rerouted = assert_learned_once_as_river(node, 300)
    # CRC32 keeps each model on one partition: only models whose two hashes differ moved.
    crc32 = {m: _crc32_partition(m) for m in MODELS}
    moved = [m for m in MODELS if crc32[m] != partition_for(m, PARTITIONS)]
    assert moved, "with these names some models must land elsewhere under CRC32"
    assert rerouted == 300 * len(moved)
    prometheus = node.get("/metrics").text
    assert f"streamlearn_rerouted_node_total {float(300 * len(moved))}" in prometheus
    for model in moved:
        assert f'streamlearn_rerouted_total{{model="{model}"}} 300.0' in prometheus


def test_a_round_robin_producer(start_node: Any) -> None:
    node = start_node(models_toml())
    values = interleaved(300)
    run(produce_round_robin(node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
                            node.topic("events"), values))  # fmt: skip
    rerouted = assert_learned_once_as_river(node, 300)
    # The k-th message went to partition k mod 12: every one not on its model's moved.
    misplaced = [k for k, (m, _) in enumerate(values) if k % PARTITIONS != partition_for(m, 12)]
    assert rerouted == len(misplaced) > len(values) / 2


@pytest.mark.slow
def test_kill_9_while_events_are_being_moved_learns_each_once(start_node: Any) -> None:
    node = start_node(models_toml())
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    values = interleaved(1250)
    run(produce_round_robin(bootstrap, node.topic("events"), values))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _moved(node) < 200:
        time.sleep(0.02)
    moved_before = _moved(node)
    assert 0 < moved_before < len(values), "the kill must come while events are moving"
    node.kill()
    node.start()
    assert_learned_once_as_river(node, 1250)


def _moved(node: NodeProcess) -> float:
    for line in node.get("/metrics").text.splitlines():
        if line.startswith("streamlearn_rerouted_node_total "):
            return float(line.split()[1])
    return 0.0


def _crc32_partition(model: str) -> int:
    """Where librdkafka's ``consistent_random`` partitioner puts a key."""
    return zlib.crc32(model.encode()) % PARTITIONS
