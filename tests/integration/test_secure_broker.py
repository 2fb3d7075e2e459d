"""The secure local broker keeps its promises: who may log in, and what they may touch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from streams.broker.local import LocalKafka
from streams.settings import Settings
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

#: Kafka's TOPIC_AUTHORIZATION_FAILED error code.
TOPIC_AUTHORIZATION_FAILED = 29


def client_config(env: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """aiokafka keyword arguments from the ``STREAMLEARN_KAFKA_*`` settings of a broker."""
    return {
        "bootstrap_servers": env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
        "security_protocol": env["STREAMLEARN_KAFKA_SECURITY_PROTOCOL"],
        "sasl_mechanism": env["STREAMLEARN_KAFKA_SASL_MECHANISM"],
        "sasl_plain_username": env["STREAMLEARN_KAFKA_SASL_USERNAME"],
        "sasl_plain_password": env["STREAMLEARN_KAFKA_SASL_PASSWORD"],
        "ssl_context": create_ssl_context(cafile=env["STREAMLEARN_KAFKA_SSL_CAFILE"]),
        **overrides,
    }


async def create_topic(config: dict[str, Any], topic: str) -> int:
    """Create ``topic`` and return the broker's error code for it (0: created)."""
    admin = AIOKafkaAdminClient(**config)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    [(name, code, _message)] = response.topic_errors
    assert name == topic
    code_: int = code
    return code_


async def login(broker: LocalKafka, port: int | None = None, **kwargs: Any) -> None:
    """One connection to the broker (ApiVersions, then SASL if asked for), closed again."""
    conn = AIOKafkaConnection(broker.host, port or broker.port, request_timeout_ms=10_000, **kwargs)
    try:
        await conn.connect()
    finally:
        # close() only starts a TLS shutdown: wait for it, or the socket outlives the loop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(conn.close()), 5)


def sasl_ssl(broker: LocalKafka, username: str, password: str, mechanism: str) -> dict[str, Any]:
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": ssl.create_default_context(cafile=str(broker.tls.ca)),
        "sasl_mechanism": mechanism,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
    }


async def test_the_service_user_writes_and_reads_its_own_topics(
    secure_kafka_broker: LocalKafka,
) -> None:
    config = client_config(secure_kafka_broker.client_env())
    topic = f"sl.{uuid.uuid4().hex[:8]}.events"
    assert await create_topic(config, topic) == 0

    producer = AIOKafkaProducer(**config, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, **config, group_id=f"sl-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert (message.key, message.value) == (b"k", b"hello")


async def test_topics_and_groups_outside_the_prefixes_are_refused(
    secure_kafka_broker: LocalKafka,
) -> None:
    config = client_config(secure_kafka_broker.client_env())
    outside = f"other.{uuid.uuid4().hex[:8]}"
    assert await create_topic(config, outside) == TOPIC_AUTHORIZATION_FAILED

    # The admin may create it; the service user still may not write to it.
    admin_config = client_config(secure_kafka_broker.client_env("admin"))
    assert await create_topic(admin_config, outside) == 0
    producer = AIOKafkaProducer(**config, request_timeout_ms=10_000)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(outside, b"nope")
    finally:
        await producer.stop()

    inside = f"sl.{uuid.uuid4().hex[:8]}"
    assert await create_topic(config, inside) == 0
    consumer = AIOKafkaConsumer(inside, **config, group_id=f"outside-{uuid.uuid4().hex[:8]}")
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.start()
            await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()


async def test_a_plaintext_client_gets_nowhere(secure_kafka_broker: LocalKafka) -> None:
    broker = secure_kafka_broker
    for port in (broker.port, broker.port + 1):  # the clients' listener and the controller's
        with pytest.raises(KafkaConnectionError):
            await login(broker, port)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=5_000)
    try:
        with pytest.raises(KafkaConnectionError):
            await producer.start()
    finally:
        await producer.stop()


async def test_a_wrong_password_or_mechanism_is_refused(secure_kafka_broker: LocalKafka) -> None:
    broker = secure_kafka_broker
    password = broker.client_env()["STREAMLEARN_KAFKA_SASL_PASSWORD"]
    await login(broker, **sasl_ssl(broker, "streamlearn", password, "SCRAM-SHA-512"))

    with pytest.raises(SaslAuthenticationFailed):
        await login(broker, **sasl_ssl(broker, "streamlearn", password + "x", "SCRAM-SHA-512"))
    with pytest.raises(SaslAuthenticationFailed):
        await login(broker, **sasl_ssl(broker, "nobody", password, "SCRAM-SHA-512"))
    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        with pytest.raises(UnsupportedSaslMechanismError):
            await login(broker, **sasl_ssl(broker, "streamlearn", password, mechanism))


async def test_the_controller_listener_takes_no_client_logins(
    secure_kafka_broker: LocalKafka,
) -> None:
    broker = secure_kafka_broker
    password = broker.client_env()["STREAMLEARN_KAFKA_SASL_PASSWORD"]
    controller = broker.port + 1
    with pytest.raises(UnsupportedSaslMechanismError):
        await login(
            broker, controller, **sasl_ssl(broker, "streamlearn", password, "SCRAM-SHA-512")
        )
    with pytest.raises(SaslAuthenticationFailed):
        await login(broker, controller, **sasl_ssl(broker, "streamlearn", password, "PLAIN"))


def test_start_is_idempotent_and_keeps_the_grants(secure_kafka_broker: LocalKafka) -> None:
    pid = secure_kafka_broker.status().pid
    assert secure_kafka_broker.start().pid == pid
    config = client_config(secure_kafka_broker.client_env())
    assert asyncio.run(create_topic(config, f"sl.{uuid.uuid4().hex[:8]}")) == 0


def test_the_cli_prints_settings_a_client_connects_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port(pairs=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREAMLEARN_")}
    env |= {
        "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
        "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "STREAMLEARN_TOPIC_PREFIX": "slcli.",
        "STREAMLEARN_APP_ID": "slcli",
        # An operator who chose the password: the rest of the client settings come along.
        "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMLEARN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAMLEARN_KAFKA_SASL_USERNAME": "streamlearn",
        "STREAMLEARN_KAFKA_SASL_PASSWORD": "chosen, with a comma",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "kafka", *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    started = cli("start", "--secure")
    try:
        assert started.returncode == 0, started.stderr
        # What `set -a; eval "$(...)"` would export: the shell words, unquoted.
        pairs = [line.partition("=") for line in started.stdout.splitlines()]
        printed = {key: shlex.split(value)[0] for key, _, value in pairs if key[:1] != "#"}
        assert printed["STREAMLEARN_KAFKA_SASL_PASSWORD"] == "chosen, with a comma"
        assert "chosen" not in started.stderr  # the password is shown, never logged

        # Exported, they are settings the project reads...
        for key, value in printed.items():
            monkeypatch.setenv(key, value)
        settings = Settings()
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert settings.kafka_ssl_cafile == Path(printed["STREAMLEARN_KAFKA_SSL_CAFILE"])
        # ...with which a client gets in, and may use the prefix it was started with.
        assert asyncio.run(create_topic(client_config(printed), "slcli.events")) == 0
        assert (
            asyncio.run(create_topic(client_config(printed), "sl.other"))
            == TOPIC_AUTHORIZATION_FAILED
        )

        status = cli("status")
        assert status.returncode == 0
        assert "(SASL_SSL): running" in status.stdout
    finally:
        stopped = cli("stop")
    assert stopped.stdout.strip() == "stopped", stopped.stderr
    assert cli("status").returncode == 3
