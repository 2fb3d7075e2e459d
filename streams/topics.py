"""Every contract topic, declared once, and their explicit creation on the broker."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    InvalidReplicationFactorError,
    NoError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

from streams.acls import Operation, denial, describe_access, require, require_group
from streams.credentials import client_options
from streams.kafka_check import quiet
from streams.learning.errors import TopicAccessDenied, TopicCreationFailed, TopicMismatch
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
    "audit",
    "models",
)
#: Topics keyed by model whose latest value per key is all that matters; their messages may
#: be as large as a whole snapshot.
COMPACTED_TOPICS = frozenset({"snapshots", "models"})
#: The record of every admin call: deleted by age only, after ``STREAMLEARN_AUDIT_RETENTION_DAYS``.
AUDIT_TOPIC = "audit"


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
    audit_topic: Any
    #: The model registry (see :mod:`streams.models_topic`), read whole by every node.
    models_topic: Any


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


#: What a node does with each contract topic: the ACLs it needs, checked before it starts.
NODE_NEEDS: Mapping[str, frozenset[Operation]] = {
    "events": frozenset({Operation.READ}),
    "labels": frozenset({Operation.READ}),
    "predictions": frozenset({Operation.WRITE}),
    "metrics": frozenset({Operation.WRITE}),
    "drift": frozenset({Operation.WRITE}),
    "dead-letters": frozenset({Operation.WRITE}),
    "snapshots": frozenset({Operation.READ, Operation.WRITE}),
    "promotions": frozenset({Operation.WRITE}),
    "audit": frozenset({Operation.WRITE}),
    "models": frozenset({Operation.READ, Operation.WRITE}),
}


def leader_topic_name(settings: Settings) -> str:
    """The topic Faust's leader assignor creates and consumes for the group, named by Faust
    (``faust/assignor/leader_assignor.py``) after the app id, not the topic prefix."""
    return f"{settings.app_id}-__assignor-__leader"


async def create_topics(settings: Settings) -> list[str]:
    """Create the contract topics that do not exist yet, all with one partition count, and
    check that the broker's ACLs let this node do what it needs with them.

    Topics are created here rather than on first write, because a topic auto-created by a
    producer gets the broker's default partition count and breaks co-partitioning.

    Raises
    ------
    TopicAccessDenied
        The Kafka user may not create, read or write a topic, or use the consumer group.
    TopicMismatch
        An existing topic keyed by model has another partition count.
    """
    with quiet("aiokafka", below=logging.WARNING):
        return await _create_topics(settings)


async def _create_topics(settings: Settings) -> list[str]:
    options = client_options(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, **options)
    client = AIOKafkaClient(bootstrap_servers=settings.kafka_bootstrap_servers, **options)
    await admin.start()
    try:
        await client.bootstrap()
        names = {settings.topic_name(name): name for name in CONTRACT_TOPICS}
        leader = leader_topic_name(settings)
        access = await describe_access(client, [*names, leader])
        missing = [full for full in names if not access[full].exists]
        require(settings, access, {full: {Operation.CREATE} for full in missing})
        wanted = [_new_topic(settings, names[full]) for full in missing]
        if wanted:
            _check_created(settings, await admin.create_topics(wanted))
            access.update(await describe_access(client, missing))
        require(settings, access, {full: NODE_NEEDS[name] for full, name in names.items()})
        await require_group(settings, admin)
        leader_needs = {Operation.READ} if access[leader].exists else {Operation.CREATE}
        require(settings, access, {leader: leader_needs}, grant_prefix=settings.app_id)
        for name in ("events", "labels", "snapshots"):
            count = access[settings.topic_name(name)].partitions
            if count and count != settings.topic_partitions:
                raise TopicMismatch(
                    f"topic {settings.topic_name(name)} has {count} partitions but"
                    f" STREAMLEARN_TOPIC_PARTITIONS is {settings.topic_partitions}: every node"
                    " must use the partition count the topics were created with"
                )
        return [t.name for t in wanted]
    finally:
        await client.close()
        await admin.close()


def _audit_config(settings: Settings) -> dict[str, str]:
    """Kept by age, never compacted (every call matters, not the last one per model), even
    where the broker's default retention is short."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(settings.audit_retention_days * 86_400_000),
        "retention.bytes": "-1",
    }


def _new_topic(settings: Settings, name: str) -> NewTopic:
    config = _compacted_config(settings) if name in COMPACTED_TOPICS else {}
    if name == AUDIT_TOPIC:
        config = _audit_config(settings)
    return NewTopic(settings.topic_name(name), settings.topic_partitions,
                    settings.topic_replication_factor, topic_configs=config)  # fmt: skip


def _check_created(settings: Settings, response: Any) -> None:
    """Read the per-topic errors of a ``CreateTopics`` response, which aiokafka returns
    rather than raises: a topic another node created meanwhile is fine, a refusal is not."""
    for topic, code, *message in response.topic_errors:
        error = for_code(code)
        if error is NoError or error is TopicAlreadyExistsError:
            if error is TopicAlreadyExistsError:
                logger.info("another process created topic %s first", topic)
            continue
        if error in (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
            raise TopicAccessDenied(denial(settings, topic, [Operation.CREATE]))
        reason = message[0] if message and message[0] else error.description
        if error is InvalidReplicationFactorError:
            factor = settings.topic_replication_factor
            reason = (f"{reason.rstrip('.')}; set STREAMLEARN_TOPIC_REPLICATION_FACTOR (now"
                      f" {factor}) to what the cluster can give")  # fmt: skip
        raise TopicCreationFailed(f"the broker refused to create topic {topic!r}: {reason}")
