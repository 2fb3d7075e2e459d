"""The settings turned into every Kafka client's security options and Faust's credentials:
the password leaves its SecretStr only there, and no repr shows it."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams.app import create_faust_app
from streams.broker.tls import TlsFiles, ensure_certificates
from streams.credentials import broker_credentials, client_options, ssl_context
from streams.learning.errors import TlsFilesUnusable
from streams.settings import Settings

PASSWORD = "pw-Zq8-never-shown"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA, a broker certificate and a client certificate (with its key)."""
    return ensure_certificates(tmp_path_factory.mktemp("tls"), "127.0.0.1")


def sasl_ssl(tls: TlsFiles, **overrides: Any) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="streamlearn",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=tls.ca,
        **overrides,
    )


def test_plaintext_needs_no_options_and_no_credentials() -> None:
    assert client_options(Settings()) == {"security_protocol": "PLAINTEXT"}
    assert broker_credentials(Settings()) is None
    assert ssl_context(Settings()) is None


def test_sasl_ssl_gives_every_option_and_the_password_only_there(tls: TlsFiles) -> None:
    settings = sasl_ssl(tls)
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "streamlearn"
    assert options["sasl_plain_password"] == PASSWORD
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    for text in (repr(settings), str(settings), repr(settings.kafka_sasl_password)):
        assert PASSWORD not in text


def test_sasl_plaintext_has_no_tls(tls: TlsFiles) -> None:
    settings = sasl_ssl(tls).model_copy(
        update={"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_ssl_cafile": None}
    )
    options = client_options(settings)
    assert options["security_protocol"] == "SASL_PLAINTEXT" and "ssl_context" not in options
    credentials = broker_credentials(settings)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SASL_PLAINTEXT"


def test_faust_credentials_say_the_same_and_hide_the_password(tls: TlsFiles) -> None:
    credentials = broker_credentials(sasl_ssl(tls))
    assert isinstance(credentials, SASLCredentials)
    assert PASSWORD not in repr(credentials) and PASSWORD not in str(credentials)
    auth = credentials_to_aiokafka_auth(credentials)
    assert auth["security_protocol"] == "SASL_SSL"  # Faust picks it only with a context
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "streamlearn"
    assert auth["sasl_plain_password"] == PASSWORD
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


def test_ssl_with_a_client_certificate(tls: TlsFiles) -> None:
    settings = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=tls.ca,
        kafka_ssl_certfile=tls.client,
        kafka_ssl_keyfile=tls.client_key,
        kafka_ssl_check_hostname=False,
    )
    options = client_options(settings)
    assert set(options) == {"security_protocol", "ssl_context"}
    # Without the host name check the chain is still verified.
    assert not options["ssl_context"].check_hostname
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    credentials = broker_credentials(settings)
    assert isinstance(credentials, SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"


def test_without_a_cafile_the_system_trust_store_is_used() -> None:
    context = ssl_context(Settings(kafka_security_protocol="SSL"))
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (lambda t: {"kafka_ssl_cafile": t.client_key}, "STREAMLEARN_KAFKA_SSL_CAFILE="),
        (
            lambda t: {"kafka_ssl_certfile": t.client, "kafka_ssl_keyfile": t.broker_key},
            "the key does not belong to the certificate",
        ),
        (
            lambda t: {"kafka_ssl_certfile": t.ca, "kafka_ssl_keyfile": t.ca},
            "both must be PEM, and the key unencrypted",
        ),
    ],
)
def test_unusable_tls_files_are_one_clear_error(tls: TlsFiles, files: Any, expected: str) -> None:
    settings = Settings(kafka_security_protocol="SSL", **files(tls))
    with pytest.raises(TlsFilesUnusable, match=expected):
        client_options(settings)


async def test_every_aiokafka_client_takes_the_options(tls: TlsFiles) -> None:
    settings = sasl_ssl(tls, kafka_bootstrap_servers="127.0.0.1:1")
    bootstrap = settings.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_options(settings))
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, **client_options(settings))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(settings))
    client = AIOKafkaClient(bootstrap_servers=bootstrap, **client_options(settings))
    try:
        for made in (producer.client, consumer._client, admin._client, client):
            assert made._security_protocol == "SASL_SSL"
            assert made._sasl_mechanism == "SCRAM-SHA-512"
            assert made._sasl_plain_password == PASSWORD
            assert isinstance(made._ssl_context, ssl.SSLContext)
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.close()
        await client.close()


def test_the_faust_app_passes_them_to_its_producer_and_consumer(
    tls: TlsFiles, tmp_path: Path
) -> None:
    app = create_faust_app(sasl_ssl(tls, state_dir=tmp_path))
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, SASLCredentials)
    producer = app.producer
    # What the node's idempotent producer is built with (streams/cluster.py): its own
    # extra settings keep Faust's authentication.
    built = {
        **producer._settings_default(),
        **producer._settings_auth(),
        **producer._settings_extra(),
    }
    assert built["security_protocol"] == "SASL_SSL"
    assert built["sasl_plain_password"] == PASSWORD
    assert built["acks"] == "all" and built["enable_idempotence"] is True
    # The consumer (and the topic-creating client, the producer's) take the same conf.
    assert credentials_to_aiokafka_auth(credentials, app.conf.ssl_context) == (
        producer._settings_auth()
    )
    assert PASSWORD not in repr(app.conf.broker_credentials)
