"""The Kafka security settings: defaults that change nothing, and validation messages that
name the environment variable to fix without ever echoing a secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings

PASSWORD = "pw-Zq8-never-shown"
SASL = {
    "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "STREAMLEARN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "STREAMLEARN_KAFKA_SASL_USERNAME": "streamlearn",
    "STREAMLEARN_KAFKA_SASL_PASSWORD": PASSWORD,
}


def settings_from(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Settings read from the environment, as a process reads them."""
    for name in [n for n in os.environ if n.startswith("STREAMLEARN_KAFKA_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def error_of(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    with pytest.raises(ValidationError) as caught:
        settings_from(monkeypatch, env)
    text = str(caught.value)
    assert PASSWORD not in text and PASSWORD not in repr(caught.value)
    return text


def test_the_defaults_are_plaintext_without_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, {})
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_mechanism is None and settings.kafka_sasl_password is None
    assert settings.kafka_ssl_cafile is None and settings.kafka_ssl_check_hostname is True
    assert not settings.kafka_uses_tls and not settings.kafka_uses_sasl


def test_sasl_settings_are_read_and_the_password_stays_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from(
        monkeypatch, {**SASL, "STREAMLEARN_KAFKA_SASL_MECHANISM": "scram-sha-512"}
    )
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"  # normalised, as Kafka's clients do
    assert settings.kafka_uses_tls and settings.kafka_uses_sasl
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert PASSWORD not in text


@pytest.mark.parametrize("missing", sorted(n for n in SASL if "SASL_" in n and "PROTOCOL" not in n))
def test_a_sasl_protocol_needs_mechanism_username_and_password(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    env = {k: v for k, v in SASL.items() if k != missing}
    assert f"SASL_SSL needs {missing}" in error_of(monkeypatch, env)


def test_credentials_the_protocol_does_not_use_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # `streamlearn kafka start --secure` reads the password it is to give the service user;
    # a worker with another protocol is told so by the broker check, in one line.
    settings = settings_from(monkeypatch, {**SASL, "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SSL"})
    assert not settings.kafka_uses_sasl


@pytest.mark.parametrize("value", ["TLS", "SASL", "kerberos"])
def test_an_unknown_protocol_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    text = error_of(monkeypatch, {"STREAMLEARN_KAFKA_SECURITY_PROTOCOL": value})
    assert "kafka_security_protocol" in text and "SASL_SSL" in text


def test_an_unknown_mechanism_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    text = error_of(monkeypatch, {**SASL, "STREAMLEARN_KAFKA_SASL_MECHANISM": "GSSAPI"})
    assert "kafka_sasl_mechanism" in text and "SCRAM-SHA-512" in text


def test_a_certificate_needs_its_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("")
    env = {
        "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SSL",
        "STREAMLEARN_KAFKA_SSL_CERTFILE": str(cert),
    }
    text = error_of(monkeypatch, env)
    assert "STREAMLEARN_KAFKA_SSL_CERTFILE and STREAMLEARN_KAFKA_SSL_KEYFILE go together" in text


@pytest.mark.parametrize(
    "name",
    [
        "STREAMLEARN_KAFKA_SSL_CAFILE",
        "STREAMLEARN_KAFKA_SSL_CERTFILE",
        "STREAMLEARN_KAFKA_SSL_KEYFILE",
    ],
)
def test_tls_files_must_exist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> None:
    env = {"STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SSL", name: str(tmp_path / "missing.pem")}
    assert f"{name}: {tmp_path / 'missing.pem'} is not a file" in error_of(monkeypatch, env)


def test_hostname_checking_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SSL",
        "STREAMLEARN_KAFKA_SSL_CHECK_HOSTNAME": "false",
    }
    assert settings_from(monkeypatch, env).kafka_ssl_check_hostname is False


def test_no_validation_error_echoes_its_input(monkeypatch: pytest.MonkeyPatch) -> None:
    # A field error elsewhere must not print the whole input, password included.
    text = error_of(monkeypatch, {**SASL, "STREAMLEARN_HTTP_PORT": "not-a-port"})
    assert "http_port" in text
