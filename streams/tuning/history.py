"""Read a model's history from Kafka: its partitions of ``events`` and ``labels``, from the
oldest record the broker retains to the end as it was when the read began, merged by the
records' timestamps and joined by a :class:`~streams.learning.window.HistoryWindow`.

Run by a tuning job's own process (:mod:`streams.tuning.worker`), never by the node: the
read may cover every record the topics retain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from streams.credentials import client_options
from streams.learning.events import Event, Label, decode_events, decode_labels
from streams.learning.model import Limits
from streams.learning.partitioning import partition_for
from streams.learning.spec import ModelSpec
from streams.learning.window import HistoryWindow
from streams.settings import Settings

_Item = tuple[ConsumerRecord[bytes, bytes], int]
#: Records fetched per call, per partition.
_BATCH = 2_000


def limits_of(settings: Settings) -> Limits:
    """The bounds the node's models have, from the same settings."""
    return Limits(
        dedupe_size=settings.dedupe_window_size,
        dedupe_seconds=settings.dedupe_window_seconds,
        pending_size=settings.pending_max_size,
        pending_seconds=settings.pending_ttl_seconds,
    )


async def read_window(settings: Settings, spec: ModelSpec, size: int) -> HistoryWindow:
    """The last ``size`` labelled events of ``spec.name`` that its partitions hold now."""
    window = HistoryWindow(spec, size, limits_of(settings))
    partition = partition_for(spec.name, settings.topic_partitions)
    events = TopicPartition(settings.topic_name("events"), partition)
    labels = TopicPartition(settings.topic_name("labels"), partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=settings.max_message_bytes,
        fetch_max_bytes=settings.max_message_bytes,
        **client_options(settings),
    )
    await consumer.start()
    try:
        consumer.assign([events, labels])
        starts = await consumer.beginning_offsets([events, labels])
        ends = await consumer.end_offsets([events, labels])
        for tp in (events, labels):
            consumer.seek(tp, starts[tp])
        streams = [
            _records(consumer, tp, ends[tp], kind) for kind, tp in enumerate((events, labels))
        ]
        async for record, kind in _merged(*streams):
            _feed(window, record, kind, settings.max_event_bytes)
    finally:
        await consumer.stop()
    return window


def _feed(window: HistoryWindow, record: ConsumerRecord[bytes, bytes], kind: int,
          max_bytes: int) -> None:  # fmt: skip
    if record.value is None:
        return
    now = record.timestamp / 1000.0
    if kind == 0:
        for event in decode_events(record.value, max_bytes):
            if isinstance(event, Event) and event.model == window.name:
                window.event(event, now)
    else:
        for label in decode_labels(record.value, max_bytes):
            if isinstance(label, Label) and label.model == window.name:
                window.label(label, now)


async def _records(
    consumer: AIOKafkaConsumer, tp: TopicPartition, end: int, kind: int
) -> AsyncIterator[_Item]:
    """Every record of ``tp`` from the consumer's position up to ``end``."""
    while await consumer.position(tp) < end:
        batch = await consumer.getmany(tp, timeout_ms=1000, max_records=_BATCH)
        for record in batch.get(tp, []):
            if record.offset >= end:
                return
            yield record, kind


async def _merged(*streams: AsyncIterator[_Item]) -> AsyncIterator[_Item]:
    """The records of ``streams`` by timestamp; at equal times, in the order of ``streams``
    (an event before a label). One record of each is held at a time."""
    heads = [await anext(stream, None) for stream in streams]
    while True:
        ready = [(item[0].timestamp, i) for i, item in enumerate(heads) if item is not None]
        if not ready:
            return
        _, i = min(ready)
        item = heads[i]
        assert item is not None
        yield item
        heads[i] = await anext(streams[i], None)
