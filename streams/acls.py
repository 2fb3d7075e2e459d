"""What the broker's ACLs let this process do with its topics and consumer group, asked
before it starts, so that a missing grant stops it with one line instead of a traceback
from deep inside a running agent.

Kafka answers this itself (KIP-430): a ``Metadata`` request (v8 and later) may ask for each
topic's *authorized operations*, a bit set of what the requesting principal may do, for
topics that do not exist yet too. aiokafka speaks ``Metadata`` only up to v5, so the v8
request and response are declared here, in aiokafka's own protocol types; v8 is the last
version without tagged fields, which every broker since 2.3 (and 4.x) still accepts. A
broker too old to tell leaves the operations unknown and nothing is refused here.

The consumer group has no such metadata; asking for its coordinator needs ``DESCRIBE`` on
the group, which every grant that lets a node consume includes: a refusal there is a
missing grant, not a broker still starting.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka import AIOKafkaClient
from aiokafka.errors import GroupAuthorizationFailedError, KafkaError
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.metadata import MetadataRequest
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Schema, String

from streams.credentials import client_options
from streams.kafka_check import quiet
from streams.learning.errors import TopicAccessDenied
from streams.settings import Settings

#: What a broker sends when it was not asked for (or cannot tell) the authorized operations.
_NOT_PROVIDED = -(2**31)
_TOPIC_AUTHORIZATION_FAILED = 29
_UNKNOWN_TOPIC = 3


class Operation(IntEnum):
    """Kafka's ACL operations (``AclOperation``) a node needs, under Kafka's codes."""

    READ = 3
    WRITE = 4
    CREATE = 5
    DESCRIBE = 8


@dataclass(frozen=True)
class TopicAccess:
    """One topic as this principal sees it."""

    name: str
    #: ``False`` when the topic does not exist, or when the principal may not even see it.
    exists: bool
    #: The principal may not ``DESCRIBE`` the topic, so it cannot tell whether it exists.
    hidden: bool
    partitions: int
    #: What the principal may do with the topic; ``None`` when the broker did not say.
    operations: frozenset[Operation] | None

    def lacks(self, needed: Collection[Operation]) -> list[Operation]:
        """The operations of ``needed`` this principal may not perform (none if unknown)."""
        if self.hidden:
            return sorted(needed)
        if self.operations is None:
            return []
        return sorted(op for op in needed if op not in self.operations)


async def describe_access(client: Any, topics: Iterable[str]) -> dict[str, TopicAccess]:
    """Ask a started ``AIOKafkaClient`` what this principal may do with each of ``topics``.

    Never creates a topic (auto-creation is switched off in the request). A broker that
    does not speak ``Metadata`` v8 gets aiokafka's own request, and operations stay unknown.
    """
    node = client.get_random_node()
    try:
        response = await client.send(node, _AuthorizedMetadata(list(topics)))
    except NotImplementedError:  # aiokafka found no version both sides speak
        response = await client.send(node, MetadataRequest(list(topics), False))
    access = {}
    for topic in response.to_object()["topics"]:
        code = topic["error_code"]
        bits = topic.get("topic_authorized_operations", _NOT_PROVIDED)
        operations = None
        if bits != _NOT_PROVIDED:
            operations = frozenset(op for op in Operation if bits & (1 << op))
        access[topic["topic"]] = TopicAccess(
            name=topic["topic"],
            exists=code not in (_UNKNOWN_TOPIC, _TOPIC_AUTHORIZATION_FAILED),
            hidden=code == _TOPIC_AUTHORIZATION_FAILED,
            partitions=len(topic["partitions"]),
            operations=operations,
        )
    return access


async def require_topics(settings: Settings, needs: Mapping[str, Collection[Operation]]) -> None:
    """Connect, ask and :func:`require`, for a process that only uses existing topics."""
    with quiet("aiokafka", below=logging.WARNING):
        client = AIOKafkaClient(
            bootstrap_servers=settings.kafka_bootstrap_servers, **client_options(settings)
        )
        try:
            await client.bootstrap()
            require(settings, await describe_access(client, needs), needs)
        finally:
            await client.close()


def require(
    settings: Settings,
    access: Mapping[str, TopicAccess],
    needs: Mapping[str, Collection[Operation]],
    *,
    grant_prefix: str | None = None,
) -> None:
    """Stop with one line at the first topic of ``needs`` missing one of its operations.

    ``grant_prefix`` is the prefix the line suggests granting on; by default the topic
    prefix, for the topics that have it.
    """
    for name, needed in needs.items():
        topic = access.get(name)
        missing = topic.lacks(needed) if topic is not None else []
        if missing:
            raise TopicAccessDenied(denial(settings, name, missing, grant_prefix))


async def require_group(settings: Settings, admin: Any) -> None:
    """Stop with one line when this principal may not use the node's consumer group
    (``STREAMLEARN_APP_ID``). Other answers (no coordinator yet) are Faust's to wait out."""
    try:
        await admin.find_coordinator(settings.app_id)
    except GroupAuthorizationFailedError:
        raise TopicAccessDenied(
            f"{principal(settings)} may not use the consumer group {settings.app_id!r}"
            f" (ACL); grant it READ on the group prefix {settings.app_id!r}, or set"
            " STREAMLEARN_APP_ID to a group it may use"
        ) from None
    except KafkaError:
        return


def denial(
    settings: Settings, topic: str, missing: Collection[Operation], prefix: str | None = None
) -> str:
    """The one line for a topic this principal may not use as needed."""
    if prefix is None and topic.startswith(settings.topic_prefix):
        prefix = settings.topic_prefix
    where = f"the prefix {prefix!r}" if prefix else f"the topic {topic!r}"
    verbs = " or ".join(op.name.lower() for op in missing)
    if Operation.CREATE in missing:
        return (
            f"{principal(settings)} may not {verbs} topic {topic!r} (ACL); grant it CREATE,"
            f" WRITE and READ on {where}, or create the topics yourself"
        )
    grants = " and ".join(op.name for op in missing)
    return (
        f"{principal(settings)} may not {verbs} topic {topic!r} (ACL); grant it {grants} on {where}"
    )


def principal(settings: Settings) -> str:
    """Who the broker sees, in words (never a secret)."""
    if settings.kafka_uses_sasl and settings.kafka_sasl_username:
        return f"the Kafka user {settings.kafka_sasl_username!r}"
    if settings.kafka_ssl_certfile is not None:
        return f"the Kafka user of the certificate {str(settings.kafka_ssl_certfile)!r}"
    return "the Kafka user 'ANONYMOUS'"


class _MetadataResponseV8(Response):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            Array(
                ("node_id", Int32),
                ("host", String("utf-8")),
                ("port", Int32),
                ("rack", String("utf-8")),
            ),
        ),
        ("cluster_id", String("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            Array(
                ("error_code", Int16),
                ("topic", String("utf-8")),
                ("is_internal", Boolean),
                (
                    "partitions",
                    Array(
                        ("error_code", Int16),
                        ("partition", Int32),
                        ("leader", Int32),
                        ("leader_epoch", Int32),
                        ("replicas", Array(Int32)),
                        ("isr", Array(Int32)),
                        ("offline_replicas", Array(Int32)),
                    ),
                ),
                ("topic_authorized_operations", Int32),
            ),
        ),
        ("cluster_authorized_operations", Int32),
    )


class _MetadataRequestV8(RequestStruct):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 8
    RESPONSE_TYPE = _MetadataResponseV8
    SCHEMA = Schema(
        ("topics", Array(String("utf-8"))),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
    )


class _AuthorizedMetadata(Request[_MetadataRequestV8]):  # type: ignore[misc]
    """``Metadata`` v8 for ``topics``, with their authorized operations, creating nothing."""

    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[_MetadataRequestV8]) -> _MetadataRequestV8:
        return request_struct_class(self._topics, False, False, True)
