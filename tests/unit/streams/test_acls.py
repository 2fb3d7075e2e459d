"""What the broker's ACLs allow, read from a Metadata v8 answer, and the one line for what
they do not. The real broker's answers are proven in tests/integration/test_secure_failures.py."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

from streams.acls import (
    Operation,
    TopicAccess,
    _AuthorizedMetadata,
    _MetadataRequestV8,
    describe_access,
    require,
    require_group,
)
from streams.learning.errors import TopicAccessDenied
from streams.settings import Settings

SETTINGS = Settings(
    kafka_security_protocol="SASL_PLAINTEXT",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="streamlearn",
    kafka_sasl_password="pw",
    topic_prefix="p.",
    app_id="p-app",
)


def bits(*operations: Operation) -> int:
    return sum(1 << op for op in operations)


class FakeClient:
    """Answers the v8 request as a broker would: (error code, partitions, operations)."""

    def __init__(self, topics: dict[str, tuple[int, int, int]]) -> None:
        self.topics = topics
        self.requests: list[Any] = []

    def get_random_node(self) -> int:
        return 1

    async def send(self, node_id: int, request: Any) -> Any:
        self.requests.append(request.prepare({3: (4, 12)}))
        return self

    def to_object(self) -> dict[str, Any]:
        return {
            "topics": [
                {
                    "error_code": code,
                    "topic": name,
                    "partitions": [{}] * partitions,
                    "topic_authorized_operations": operations,
                }
                for name, (code, partitions, operations) in self.topics.items()
            ]
        }


async def test_the_request_is_metadata_v8_asking_for_operations_and_creating_nothing() -> None:
    client = FakeClient({"p.events": (0, 4, bits(Operation.READ, Operation.DESCRIBE))})
    await describe_access(client, ["p.events"])
    (request,) = client.requests
    assert isinstance(request, _MetadataRequestV8)
    assert request.to_object() == {
        "topics": ["p.events"],
        "allow_auto_topic_creation": False,
        "include_cluster_authorized_operations": False,
        "include_topic_authorized_operations": True,
    }
    assert _AuthorizedMetadata(["x"]).API_KEY == 3


async def test_access_is_read_from_the_answer() -> None:
    client = FakeClient(
        {
            "p.events": (0, 4, bits(Operation.READ, Operation.DESCRIBE)),
            "p.new": (3, 0, bits(Operation.CREATE, Operation.DESCRIBE)),
            "q.hidden": (29, 0, -(2**31)),
            "p.old-broker": (0, 2, -(2**31)),
        }
    )
    access = await describe_access(client, list(client.topics))
    events, new, hidden, old = (access[name] for name in client.topics)
    assert events.exists and events.partitions == 4
    assert events.operations == frozenset({Operation.READ, Operation.DESCRIBE})
    assert events.lacks({Operation.READ}) == [] and events.lacks({Operation.WRITE}) == [
        Operation.WRITE
    ]
    assert not new.exists and new.lacks({Operation.CREATE}) == []
    assert (
        hidden.hidden
        and not hidden.exists
        and hidden.lacks({Operation.CREATE}) == [Operation.CREATE]
    )
    assert old.operations is None and old.lacks({Operation.WRITE}) == []  # unknown: not refused


def access(name: str, *operations: Operation, exists: bool = True) -> dict[str, TopicAccess]:
    return {name: TopicAccess(name, exists, False, 4, frozenset(operations))}


def test_a_missing_create_grant_is_one_line_naming_user_topic_and_prefix() -> None:
    with pytest.raises(TopicAccessDenied) as caught:
        require(SETTINGS, access("p.events", exists=False), {"p.events": {Operation.CREATE}})
    assert str(caught.value) == (
        "the Kafka user 'streamlearn' may not create topic 'p.events' (ACL); grant it CREATE,"
        " WRITE and READ on the prefix 'p.', or create the topics yourself"
    )


def test_missing_read_and_write_grants_are_named() -> None:
    with pytest.raises(TopicAccessDenied) as caught:
        require(
            SETTINGS,
            access("p.snapshots", Operation.DESCRIBE),
            {"p.snapshots": {Operation.READ, Operation.WRITE}},
        )
    assert str(caught.value) == (
        "the Kafka user 'streamlearn' may not read or write topic 'p.snapshots' (ACL); grant it"
        " READ and WRITE on the prefix 'p.'"
    )


def test_what_is_granted_passes() -> None:
    require(
        SETTINGS,
        access("p.snapshots", Operation.READ, Operation.WRITE),
        {"p.snapshots": {Operation.READ, Operation.WRITE}},
    )


def test_a_topic_outside_the_prefix_is_named_itself() -> None:
    with pytest.raises(TopicAccessDenied, match="grant it WRITE on the topic 'other'"):
        require(SETTINGS, access("other", Operation.READ), {"other": {Operation.WRITE}})


class FakeAdmin:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    async def find_coordinator(self, group_id: str) -> int:
        if self.error is not None:
            raise self.error
        return 1


async def test_a_forbidden_group_is_one_line() -> None:
    with pytest.raises(TopicAccessDenied) as caught:
        await require_group(SETTINGS, FakeAdmin(GroupAuthorizationFailedError()))
    assert str(caught.value) == (
        "the Kafka user 'streamlearn' may not use the consumer group 'p-app' (ACL); grant it"
        " READ on the group prefix 'p-app', or set STREAMLEARN_APP_ID to a group it may use"
    )


async def test_a_group_without_a_coordinator_yet_is_faust_s_to_wait_for() -> None:
    await require_group(SETTINGS, FakeAdmin(GroupCoordinatorNotAvailableError()))
    await require_group(SETTINGS, FakeAdmin(None))
