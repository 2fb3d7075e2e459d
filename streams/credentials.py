"""How every Kafka client of a process proves who it is and encrypts: the settings turned
into aiokafka's keyword arguments and into Faust's ``broker_credentials``.

Every client the project makes (Faust's consumer, producer and topic creation, the admin
client, the start-up probe, replay, the snapshot reader, the benchmarks) takes its security
from here, so that they cannot disagree. The password leaves its ``SecretStr`` only in the
options built here, handed straight to a client's constructor; nothing here logs them.

Examples
--------
>>> from streams.settings import Settings
>>> client_options(Settings())
{'security_protocol': 'PLAINTEXT'}
>>> broker_credentials(Settings()) is None
True
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, TypedDict

from faust.auth import SASLCredentials, SSLCredentials
from pydantic import SecretStr

from streams.learning.errors import TlsFilesUnusable
from streams.settings import Settings


class ClientOptions(TypedDict, total=False):
    """The security keyword arguments that every aiokafka client takes, under their names."""

    security_protocol: str
    ssl_context: ssl.SSLContext
    sasl_mechanism: str
    sasl_plain_username: str
    sasl_plain_password: str


def client_options(settings: Settings) -> ClientOptions:
    """Keyword arguments for ``AIOKafkaProducer``, ``AIOKafkaConsumer``,
    ``AIOKafkaAdminClient`` and ``AIOKafkaClient``: spread them into the constructor.

    Build them right where the client is made, and do not keep or log them: they hold the
    password in clear.
    """
    options = ClientOptions(security_protocol=settings.kafka_security_protocol)
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    login = _sasl_login(settings)
    if login is not None:
        mechanism, username, password = login
        options["sasl_mechanism"] = mechanism
        options["sasl_plain_username"] = username
        options["sasl_plain_password"] = password.get_secret_value()
    return options


def broker_credentials(settings: Settings) -> Any:
    """Faust's ``broker_credentials`` for the settings (``None`` for ``PLAINTEXT``).

    Faust hands them to each client it makes (its consumer, its producer, and the
    producer's client that creates topics) through ``credentials_to_aiokafka_auth``. Its
    ``SASLCredentials`` picks ``SASL_SSL`` only when given an SSL context, which is exactly
    when the settings ask for TLS. Their ``repr`` names the user, never the password.
    """
    context = ssl_context(settings)
    login = _sasl_login(settings)
    if login is None:
        return SSLCredentials(context) if context is not None else None
    mechanism, username, password = login
    return SASLCredentials(
        username=username,
        password=password.get_secret_value(),
        mechanism=mechanism,
        ssl_context=context,
    )


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of ``SSL`` and ``SASL_SSL`` (``None`` otherwise).

    It trusts ``STREAMLEARN_KAFKA_SSL_CAFILE``, or without one the system's trust store (as
    managed brokers signed by a public CA need); it presents the client certificate when
    one is set; it checks the broker's host name unless told not to (the chain is always
    verified).

    Raises
    ------
    TlsFilesUnusable
        A file exists but does not load (not PEM, an encrypted key, a key that does not
        match the certificate); the message names the setting.
    """
    if not settings.kafka_uses_tls:
        return None
    cafile = settings.kafka_ssl_cafile
    try:
        # What aiokafka.helpers.create_ssl_context does, minus its INFO line per context:
        # contexts are made for every client, and a start-up failure must stay one line.
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        where = f"STREAMLEARN_KAFKA_SSL_CAFILE={cafile}" if cafile else "the system trust store"
        raise TlsFilesUnusable(
            f"{where} cannot be loaded as CA certificates: {_why(exc)}"
        ) from None
    certfile, keyfile = settings.kafka_ssl_certfile, settings.kafka_ssl_keyfile
    if certfile is not None and keyfile is not None:
        try:
            # An encrypted key would make OpenSSL prompt on the terminal and hang a worker;
            # with an empty password it fails at once instead.
            context.load_cert_chain(certfile, keyfile, password=_no_password)
        except (ssl.SSLError, OSError) as exc:
            raise TlsFilesUnusable(_cert_problem(certfile, keyfile, exc)) from None
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def _sasl_login(settings: Settings) -> tuple[str, str, SecretStr] | None:
    """Mechanism, username and password when the protocol is a SASL one (the settings
    validator made sure that then all three are set)."""
    mechanism, username = settings.kafka_sasl_mechanism, settings.kafka_sasl_username
    password = settings.kafka_sasl_password
    if not settings.kafka_uses_sasl or not (mechanism and username and password):
        return None
    return mechanism, username, password


def _no_password() -> str:
    return ""


def _cert_problem(certfile: Path, keyfile: Path, exc: BaseException) -> str:
    files = f"STREAMLEARN_KAFKA_SSL_CERTFILE={certfile} and STREAMLEARN_KAFKA_SSL_KEYFILE={keyfile}"
    reason = _why(exc)
    if "KEY_VALUES_MISMATCH" in reason:
        return f"{files}: the key does not belong to the certificate"
    return (
        f"{files} cannot be loaded ({reason}): both must be PEM, and the key unencrypted"
        " (an encrypted key is not supported)"
    )


def _why(exc: BaseException) -> str:
    """OpenSSL's reason (``KEY_VALUES_MISMATCH``...) or the OS error, without a traceback."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
