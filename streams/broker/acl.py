"""The ACLs of the secure local broker: the service user may use its own topics and groups.

The broker runs Kafka's ``StandardAuthorizer`` with ``allow.everyone.if.no.acl.found=false``,
so a principal may do nothing that an ACL does not allow. The service user is granted
``ALL`` on every topic and consumer group whose name starts with one of its prefixes (the
topic prefix and the app id: Faust names its internal topics and its group after the app
id). Since Kafka 3.0 an idempotent producer needs nothing on the cluster: ``WRITE`` on a
topic is enough (KIP-679).

ACLs are created through the admin's SASL_SSL login with the CreateAcls and DescribeAcls
requests of aiokafka's protocol module (version 1 of each, which Kafka 4 still serves): its
admin client has no method for them, and Kafka's own ``kafka-acls`` tool is not among the
broker's jars (and would cost a JVM start).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest

from streams.learning.errors import BrokerError


class ResourceType(enum.IntEnum):
    """Kafka's wire codes for the resource kinds (``org.apache.kafka.common.resource``)."""

    ANY = 1
    TOPIC = 2
    GROUP = 3


class PatternType(enum.IntEnum):
    PREFIXED = 4


class Operation(enum.IntEnum):
    ALL = 2


class Permission(enum.IntEnum):
    ALLOW = 3


@dataclass(frozen=True)
class Login:
    """How to reach the broker as a SCRAM user over SASL_SSL."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    mechanism: str
    ssl_context: ssl.SSLContext


def prefix_grants(prefixes: Iterable[str]) -> set[tuple[ResourceType, str]]:
    """The (resource type, name prefix) pairs a user of these prefixes is allowed ``ALL`` on.

    An empty prefix is skipped: as a prefix it would name every topic, and Kafka refuses it.

    Examples
    --------
    >>> sorted((kind.name, name) for kind, name in prefix_grants(["sl.", "sl", ""]))
    [('GROUP', 'sl'), ('GROUP', 'sl.'), ('TOPIC', 'sl'), ('TOPIC', 'sl.')]
    """
    names = {prefix for prefix in prefixes if prefix}
    return {(kind, name) for name in names for kind in (ResourceType.TOPIC, ResourceType.GROUP)}


def grant(login: Login, user: str, prefixes: Iterable[str], timeout: float) -> None:
    """Allow ``user`` everything on topics and groups with these prefixes; idempotent.

    Waits, up to ``timeout`` seconds, until the broker accepts the admin's SASL_SSL login:
    an open port only means the listener is bound. Returns once the broker's authorizer
    shows every grant, so the next request of ``user`` is already allowed.

    Raises
    ------
    BrokerError
        When the broker never accepts the login, or refuses an ACL.
    """
    asyncio.run(_grant(login, f"User:{user}", prefix_grants(prefixes), timeout))


async def _grant(
    login: Login, principal: str, wanted: set[tuple[ResourceType, str]], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    conn = await _connect(login, deadline)
    try:
        missing = wanted - await _granted(conn, principal)
        for kind, name in sorted(missing):
            response = await conn.send(
                CreateAclsRequest(
                    kind, name, PatternType.PREFIXED, principal, "*", Operation.ALL,
                    Permission.ALLOW,
                )
            )  # fmt: skip
            for code, message in response.creation_responses:
                if code:
                    raise BrokerError(
                        f"the broker refused the ACL {principal} ALL on {kind.name} prefix"
                        f" {name!r}: error {code} {message or ''}".rstrip()
                    )
        # CreateAcls answers once the controller committed the ACL; the broker's own
        # authorizer applies it a moment later.
        while not wanted <= await _granted(conn, principal):
            if time.monotonic() > deadline:
                raise BrokerError(f"the ACLs of {principal} did not take effect within {timeout} s")
            await asyncio.sleep(0.1)
    finally:
        # close() only starts the TLS shutdown; a socket left open outlives asyncio.run.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(conn.close()), 5)


async def _connect(login: Login, deadline: float) -> Any:
    last = ""
    while time.monotonic() < deadline:
        try:
            return await create_conn(
                login.host, login.port, client_id="streamlearn-acl", request_timeout_ms=10_000,
                ssl_context=login.ssl_context, security_protocol="SASL_SSL",
                sasl_mechanism=login.mechanism, sasl_plain_username=login.username,
                sasl_plain_password=login.password,
            )  # fmt: skip
        except (TimeoutError, OSError, KafkaError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        await asyncio.sleep(0.25)
    raise BrokerError(
        f"the broker at {login.host}:{login.port} did not accept a SASL_SSL login of"
        f" {login.username!r} in time ({last})"
    )


async def _granted(conn: Any, principal: str) -> set[tuple[ResourceType, str]]:
    """The prefixed ALLOW ALL grants the broker's authorizer holds for ``principal``."""
    response = await conn.send(
        DescribeAclsRequest(
            ResourceType.ANY, None, PatternType.PREFIXED, principal, None, Operation.ALL,
            Permission.ALLOW,
        )
    )  # fmt: skip
    if response.error_code:
        raise BrokerError(
            f"the broker refused to describe ACLs: error {response.error_code}"
            f" {response.error_message or ''}".rstrip()
        )
    return {
        (ResourceType(kind), name)
        for kind, name, _pattern, acls in response.resources
        if kind in (ResourceType.TOPIC, ResourceType.GROUP)
        for _principal, _host, operation, permission in acls
        if operation == Operation.ALL and permission == Permission.ALLOW
    }
