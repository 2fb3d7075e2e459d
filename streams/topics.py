"""Every contract topic, declared once, and their explicit creation on the broker."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.learning.errors import TopicMismatch
from streams.settings import Settings

logger = logging.getLogger(__name__)

#: The topics of the wire contract, without the prefix.
CONTRACT_TOPICS = (
    "events",
    "labels",
    "predictions",
    "metrics",
    "drift",
    "dead-letters",
    "snapshots",
    "promotions",
)
#: Topics keyed by model whose latest value per key is all that matters; their messages may
#: be as large as a whole snapshot.
COMPACTED_TOPICS = frozenset({"snapshots"})


@dataclass(frozen=True)
class Topics:
    """The Faust topic objects of a node; ``*_topic`` names follow the contract."""

    events_topic: Any
    labels_topic: Any
    predictions_topic: Any
    metrics_topic: Any
    drift_topic: Any
    dead_letters_topic: Any
    snapshots_topic: Any
    promotions_topic: Any


def declare_topics(app: Any, settings: Settings) -> Topics:
    """Declare the contract topics on a Faust app: raw bytes in and out, orjson by hand."""

    def topic(name: str) -> Any:
        return app.topic(
            settings.topic_name(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
        )

    return Topics(*(topic(name) for name in CONTRACT_TOPICS))


def _compacted_config(settings: Settings) -> dict[str, str]:
    """Compacted, large enough for a whole snapshot, and compacted within the hour: a node
    restoring a model reads the topic's partition from its start."""
    return {
        "cleanup.policy": "compact",
        "max.message.bytes": str(settings.max_message_bytes),
        "segment.bytes": str(max(128 * 1024 * 1024, 2 * settings.max_message_bytes)),
        "segment.ms": str(3_600_000),
        "min.cleanable.dirty.ratio": "0.1",
    }


async def create_topics(settings: Settings) -> list[str]:
    """Create the contract topics that do not exist yet, all with one partition count.

    Topics are created here rather than on first write, because a topic auto-created by a
    producer gets the broker's default partition count and breaks co-partitioning.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for name in CONTRACT_TOPICS:
            full = settings.topic_name(name)
            if full in existing:
                continue
            config = _compacted_config(settings) if name in COMPACTED_TOPICS else {}
            wanted.append(NewTopic(full, settings.topic_partitions, 1, topic_configs=config))
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                logger.info("another process created the topics first")
        keyed = [settings.topic_name(n) for n in ("events", "labels", "snapshots")]
        for described in await admin.describe_topics(keyed):
            count = len(described.get("partitions", ()))
            if count and count != settings.topic_partitions:
                raise TopicMismatch(
                    f"topic {described['topic']} has {count} partitions but"
                    f" STREAMLEARN_TOPIC_PARTITIONS is {settings.topic_partitions}: every node"
                    " must use the partition count the topics were created with"
                )
        return [t.name for t in wanted]
    finally:
        await admin.close()
