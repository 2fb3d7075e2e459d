from __future__ import annotations

import stat
from pathlib import Path

import pytest

from streams.broker.local import LocalKafka
from streams.learning.errors import BrokerError


def properties(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture
def secure(tmp_path: Path) -> LocalKafka:
    broker = LocalKafka(
        tmp_path, "127.0.0.1", 39092, version="4.1.1", secure=True, acl_prefixes=("sl",)
    )
    broker._prepare_security()
    broker._write_config()
    return broker


def test_a_secure_broker_has_its_own_home_and_shares_the_jars(
    secure: LocalKafka, tmp_path: Path
) -> None:
    plain = LocalKafka(tmp_path, "127.0.0.1", 39092, version="4.1.1")
    assert secure.home == tmp_path / "kafka-secure" and plain.home == tmp_path / "kafka"
    assert secure.data != plain.data and secure.config != plain.config
    assert secure.lib == plain.lib


def test_secure_config_listens_with_sasl_ssl_and_authorizes(secure: LocalKafka) -> None:
    config = properties(secure.config)
    assert config["listeners"] == "SASL_SSL://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert config["advertised.listeners"] == "SASL_SSL://127.0.0.1:39092"
    assert config["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"
    assert config["inter.broker.listener.name"] == "SASL_SSL"
    # One mechanism per listener: anything else is "unsupported", at once.
    assert config["listener.name.sasl_ssl.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert config["listener.name.controller.sasl.enabled.mechanisms"] == "PLAIN"
    assert config["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert config["listener.name.sasl_ssl.ssl.client.auth"] == "requested"
    assert config["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"] == "User:admin;User:controller"
    assert (config["ssl.keystore.type"], config["ssl.truststore.type"]) == ("PEM", "PEM")
    assert config["ssl.keystore.location"] == str(secure.tls.keystore)
    assert config["ssl.truststore.location"] == str(secure.tls.ca)
    assert secure.tls.keystore.exists() and secure.tls.ca.exists()
    assert "PLAINTEXT://" not in secure.config.read_text()


def test_secure_config_holds_passwords_so_only_its_owner_reads_it(secure: LocalKafka) -> None:
    env = secure.client_env("admin")
    assert env["STREAMLEARN_KAFKA_SASL_PASSWORD"] in secure.config.read_text()
    assert stat.S_IMODE(secure.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(secure.credentials_file.stat().st_mode) == 0o600


def test_plain_config_is_unchanged(tmp_path: Path) -> None:
    plain = LocalKafka(tmp_path, "127.0.0.1", 39092, version="4.1.1")
    plain._write_config()
    config = properties(plain.config)
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert config["listener.security.protocol.map"] == ("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
    assert "authorizer.class.name" not in config
    assert not any(key.startswith(("sasl.", "ssl.", "listener.name.")) for key in config)


def test_client_env_names_every_setting_a_client_needs(secure: LocalKafka) -> None:
    env = secure.client_env()
    assert env == {
        "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:39092",
        "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMLEARN_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "STREAMLEARN_KAFKA_SASL_USERNAME": "streamlearn",
        "STREAMLEARN_KAFKA_SASL_PASSWORD": env["STREAMLEARN_KAFKA_SASL_PASSWORD"],
        "STREAMLEARN_KAFKA_SSL_CAFILE": str(secure.tls.ca),
    }
    assert Path(env["STREAMLEARN_KAFKA_SSL_CAFILE"]).is_absolute()
    assert (
        env["STREAMLEARN_KAFKA_SASL_PASSWORD"]
        != secure.client_env("admin")["STREAMLEARN_KAFKA_SASL_PASSWORD"]
    )
    with pytest.raises(BrokerError, match="no user 'controller'"):
        secure.client_env("controller")


def test_client_env_of_a_secure_broker_never_started_is_one_clear_error(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path, "127.0.0.1", 39092, version="4.1.1", secure=True)
    with pytest.raises(BrokerError, match="no secure broker was ever started"):
        broker.client_env()


def test_the_given_password_is_the_service_users(tmp_path: Path) -> None:
    broker = LocalKafka(
        tmp_path, "127.0.0.1", 39092, version="4.1.1", secure=True, password="chosen"
    )
    broker._prepare_security()
    assert broker.client_env()["STREAMLEARN_KAFKA_SASL_PASSWORD"] == "chosen"
