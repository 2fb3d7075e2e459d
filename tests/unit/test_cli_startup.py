"""A worker that cannot use its broker stops with one line and no traceback: none answers
within the connect timeout, or one answers but refuses the security settings (then at
once). No Kafka broker is needed: the TLS refusals come from small servers started here,
the SASL ones from the exceptions aiokafka raises for them (the real broker's answers are
proven in tests/integration/test_secure_failures.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
)

from streams.broker.tls import TlsFiles, ensure_certificates
from streams.kafka_check import _diagnose, quiet, wait_for_broker
from streams.learning.errors import (
    AuthenticationFailed,
    BrokerUnreachable,
    CertificateRejected,
    ProtocolMismatch,
)
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Zq8-never-shown"


def unused_port() -> int:
    """A loopback port nothing listens on (free when asked; nothing here binds it after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def run_worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``streamlearn worker`` with ``env`` on top of a clean Kafka environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLEARN_KAFKA_")}
    full = {
        **base,
        "STREAMLEARN_KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
        "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
        "STREAMLEARN_MODELS": str(ROOT / "models.toml"),
        "STREAMLEARN_HTTP_PORT": str(unused_port()),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=full, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed start printed (and nothing else)."""
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output and PASSWORD not in output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("streamlearn: ")
    return lines[0]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a broker certificate for 127.0.0.1 and localhost."""
    return ensure_certificates(tmp_path_factory.mktemp("tls"), "127.0.0.1")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Another CA, which did not sign the broker's certificate."""
    return ensure_certificates(tmp_path_factory.mktemp("other-tls"), "127.0.0.1")


def serve(host: str, context: ssl.SSLContext | None) -> Iterator[str]:
    """A server at ``host`` that completes TLS handshakes (with ``context``) or, without
    one, reads a little and hangs up; it never speaks Kafka. Yields ``host:port``."""
    server = socket.create_server((host, 0))
    server.settimeout(0.1)  # so that the thread notices the end of the test
    port = server.getsockname()[1]
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    if context is not None:
                        with context.wrap_socket(conn, server_side=True) as tls_conn:
                            tls_conn.recv(16)
                    else:
                        conn.recv(16)
                except OSError:
                    pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"{host}:{port}"
    finally:
        done.set()
        thread.join(timeout=5)
        server.close()


@pytest.fixture
def tls_server(tls: TlsFiles) -> Iterator[str]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.broker, tls.broker_key)
    yield from serve("127.0.0.1", context)


@pytest.fixture
def plain_server() -> Iterator[str]:
    yield from serve("127.0.0.1", None)


def test_worker_without_a_broker_stops_with_one_line(tmp_path: Path) -> None:
    address = f"127.0.0.1:{unused_port()}"
    result = run_worker(tmp_path, STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS=address)
    line = one_line(result)
    assert line.startswith("streamlearn: no Kafka broker answers at")
    assert address in line and "streamlearn kafka start" in line


def test_invalid_settings_stop_with_one_line_naming_each_never_the_password(
    tmp_path: Path,
) -> None:
    result = run_worker(tmp_path, STREAMLEARN_KAFKA_SECURITY_PROTOCOL="sasl_ssl",
                        STREAMLEARN_KAFKA_SASL_PASSWORD="s3cret-value")  # fmt: skip
    line = one_line(result)
    assert line == (
        "streamlearn: invalid settings: STREAMLEARN_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs"
        " STREAMLEARN_KAFKA_SASL_MECHANISM, STREAMLEARN_KAFKA_SASL_USERNAME"
    )
    assert "s3cret-value" not in result.stdout + result.stderr
    # Every field refused is named, each as its environment variable, in the one line.
    result = run_worker(tmp_path, STREAMLEARN_HTTP_PORT="eighty",
                        STREAMLEARN_KAFKA_SSL_CAFILE=str(tmp_path / "nope.pem"))  # fmt: skip
    line = one_line(result)
    assert f"STREAMLEARN_KAFKA_SSL_CAFILE: {tmp_path / 'nope.pem'} is not a file" in line
    assert "; STREAMLEARN_HTTP_PORT: Input should be a valid integer" in line


def test_worker_distrusting_the_broker_certificate_stops_at_once_with_one_line(
    tmp_path: Path, tls_server: str, other_ca: TlsFiles
) -> None:
    result = run_worker(
        tmp_path,
        STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS=tls_server,
        STREAMLEARN_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        STREAMLEARN_KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        STREAMLEARN_KAFKA_SASL_USERNAME="streamlearn",
        STREAMLEARN_KAFKA_SASL_PASSWORD=PASSWORD,
        STREAMLEARN_KAFKA_SSL_CAFILE=str(other_ca.ca),
        # Long enough that a retrying check would hit the test's timeout instead.
        STREAMLEARN_KAFKA_CONNECT_TIMEOUT_SECONDS="600",
    )
    line = one_line(result)
    assert "does not trust" in line and "STREAMLEARN_KAFKA_SSL_CAFILE" in line
    assert str(other_ca.ca) in line


def test_worker_with_an_invalid_client_certificate_stops_with_one_line(
    tmp_path: Path, tls: TlsFiles
) -> None:
    result = run_worker(
        tmp_path,
        STREAMLEARN_KAFKA_SECURITY_PROTOCOL="SSL",
        STREAMLEARN_KAFKA_SSL_CERTFILE=str(tls.client),
        STREAMLEARN_KAFKA_SSL_KEYFILE=str(tls.broker_key),
    )
    assert "the key does not belong to the certificate" in one_line(result)


async def test_waiting_for_no_broker_raises_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"127.0.0.1:{unused_port()}"
    with caplog.at_level(logging.DEBUG), pytest.raises(BrokerUnreachable, match=address):
        await wait_for_broker(Settings(kafka_bootstrap_servers=address), 0.5)
    assert not [r for r in caplog.records if r.name.startswith("aiokafka")]
    # The quiet spell ends with the check: aiokafka logs as configured again.
    assert logging.getLogger("aiokafka").level == logging.NOTSET


async def test_a_certificate_for_another_host_names_the_hostname_setting(
    tls: TlsFiles,
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.broker, tls.broker_key)
    # The certificate names 127.0.0.1 and localhost, not 127.0.0.2 (loopback all the same).
    for address in serve("127.0.0.2", context):
        settings = Settings(
            kafka_bootstrap_servers=address, kafka_security_protocol="SSL", kafka_ssl_cafile=tls.ca
        )
        with pytest.raises(CertificateRejected, match="STREAMLEARN_KAFKA_SSL_CHECK_HOSTNAME"):
            await wait_for_broker(settings, 600)


async def test_plaintext_to_a_tls_port_asks_about_the_protocol(tls_server: str) -> None:
    settings = Settings(kafka_bootstrap_servers=tls_server)
    with pytest.raises(ProtocolMismatch, match="is the security protocol right"):
        await wait_for_broker(settings, 600)


async def test_tls_to_a_plaintext_port_asks_about_the_protocol(
    plain_server: str, tls: TlsFiles
) -> None:
    settings = Settings(
        kafka_bootstrap_servers=plain_server, kafka_security_protocol="SSL", kafka_ssl_cafile=tls.ca
    )
    with pytest.raises(ProtocolMismatch, match="is SSL, and this port may not speak TLS"):
        await wait_for_broker(settings, 600)


def sasl(**overrides: object) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="streamlearn",
        kafka_sasl_password=PASSWORD,
        **overrides,  # type: ignore[arg-type]
    )


def test_a_rejected_password_names_the_user_and_the_settings_never_the_password() -> None:
    # What aiokafka raises for the broker's SaslAuthenticate error (code 58).
    exc = SaslAuthenticationFailed(
        "Authentication failed during authentication due to invalid credentials with SASL"
        " mechanism SCRAM-SHA-512"
    )
    refusal, certain = _diagnose(exc, "broker", 9093, sasl())
    assert isinstance(refusal, AuthenticationFailed) and certain
    assert str(refusal) == (
        "the Kafka broker at broker:9093 rejected user 'streamlearn' (SCRAM-SHA-512): wrong"
        " username or password; check STREAMLEARN_KAFKA_SASL_USERNAME and"
        " STREAMLEARN_KAFKA_SASL_PASSWORD"
    )


def test_sasl_on_a_listener_without_it_asks_about_the_protocol() -> None:
    refusal, certain = _diagnose(IllegalSaslStateError(), "broker", 9093, sasl())
    assert isinstance(refusal, ProtocolMismatch) and certain
    assert "(PLAINTEXT would match this listener)" in str(refusal)


def test_a_tls_answer_to_a_plaintext_client_is_recognised() -> None:
    # A TLS alert record (0x15 0x03 0x03 ...) read as a Kafka size prefix.
    closed = KafkaConnectionError("Connection at broker:9093 closed")
    closed.__cause__ = asyncio.IncompleteReadError(b"\x00\x02\x02", 0x15030300)
    refusal, certain = _diagnose(closed, "broker", 9093, Settings())
    assert isinstance(refusal, ProtocolMismatch) and certain
    assert "answered in TLS" in str(refusal)


def test_nobody_answering_is_not_a_refusal() -> None:
    for exc in (ConnectionRefusedError(), TimeoutError(), socket.gaierror()):
        assert _diagnose(exc, "broker", 9093, sasl()) == (None, False)


def test_overlapping_quiet_spells_give_the_logger_back_as_it_was() -> None:
    logger = logging.getLogger("aiokafka")
    before = logger.level
    first, second = quiet("aiokafka", logging.WARNING), quiet("aiokafka")
    first.__enter__()
    second.__enter__()
    assert logger.level == logging.CRITICAL
    first.__exit__(None, None, None)  # the first to start ends first
    assert logger.level == logging.CRITICAL
    second.__exit__(None, None, None)
    assert logger.level == before
