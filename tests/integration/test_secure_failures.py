"""Against a secure broker (SASL_SSL, SCRAM-SHA-512, ACLs on the prefix ``sl``), a worker
with wrong security settings stops with one line naming the cause, and one with the right
ones keeps its password out of everything it shows.

Each failing worker is given a connect timeout far longer than the test waits for it: a
worker that kept retrying instead of recognising the refusal would fail the test.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from streams.broker.local import LocalKafka
from streams.credentials import client_options
from streams.settings import Settings
from tests.integration.conftest import NodeProcess
from tests.integration.kafka_io import consume, produce, run

pytestmark = pytest.mark.integration

MODELS = """
[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
"""
#: Far beyond the subprocess timeout: only an immediate, recognised failure ends in time.
CONNECT_TIMEOUT = "900"
EXIT_WITHIN = 120


def granted_prefix() -> str:
    """A topic prefix (and so an app id) inside the service user's ACL grant."""
    return f"sl{uuid.uuid4().hex[:8]}."


def failed_start(
    broker: LocalKafka,
    tmp_path: Path,
    prefix: str | None = None,
    drop: tuple[str, ...] = (),
    **env: str,
) -> tuple[str, str]:
    """Start a worker on the secure broker with ``env`` over its right settings (and without
    the settings in ``drop``); return the one line it printed, and all it printed."""
    settings = {
        **broker.client_env(),
        "STREAMLEARN_KAFKA_CONNECT_TIMEOUT_SECONDS": CONNECT_TIMEOUT,
        **env,
    }
    node = NodeProcess(
        tmp_path / "node", broker.bootstrap, MODELS, prefix or granted_prefix(), **settings
    )
    for name in drop:
        node.env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=node.env, cwd=node.workdir, capture_output=True, text=True, timeout=EXIT_WITHIN,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("streamlearn: ")
    return lines[0], output


def secrets_of(broker: LocalKafka) -> list[str]:
    return [broker.client_env()["STREAMLEARN_KAFKA_SASL_PASSWORD"]]


def test_a_wrong_password_is_one_line(secure_kafka_broker: LocalKafka, tmp_path: Path) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    line, output = failed_start(
        secure_kafka_broker, tmp_path, STREAMLEARN_KAFKA_SASL_PASSWORD=wrong
    )
    assert line == (
        f"streamlearn: the Kafka broker at {secure_kafka_broker.bootstrap} rejected user"
        " 'streamlearn' (SCRAM-SHA-512): wrong username or password; check"
        " STREAMLEARN_KAFKA_SASL_USERNAME and STREAMLEARN_KAFKA_SASL_PASSWORD"
    )
    for secret in [wrong, *secrets_of(secure_kafka_broker)]:
        assert secret not in output


def test_an_unknown_user_is_one_line(secure_kafka_broker: LocalKafka, tmp_path: Path) -> None:
    line, _ = failed_start(secure_kafka_broker, tmp_path, STREAMLEARN_KAFKA_SASL_USERNAME="nobody")
    assert "rejected user 'nobody' (SCRAM-SHA-512): wrong username or password" in line


def untrusted_ca(path: Path) -> Path:
    """A CA certificate of its own, which signed nothing the broker has."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the broker's CA")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_an_untrusted_certificate_is_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    ca = untrusted_ca(tmp_path / "other-ca.pem")
    line, output = failed_start(secure_kafka_broker, tmp_path, STREAMLEARN_KAFKA_SSL_CAFILE=str(ca))
    assert line.startswith(
        f"streamlearn: the Kafka broker at {secure_kafka_broker.bootstrap} presented a"
        " certificate this client does not trust ("
    )
    assert line.endswith(f"set STREAMLEARN_KAFKA_SSL_CAFILE to the CA that signed it (it is {ca})")
    for secret in secrets_of(secure_kafka_broker):
        assert secret not in output


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_a_mechanism_the_broker_does_not_enable_is_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path, mechanism: str
) -> None:
    line, output = failed_start(
        secure_kafka_broker, tmp_path, STREAMLEARN_KAFKA_SASL_MECHANISM=mechanism
    )
    assert line == (
        f"streamlearn: the Kafka broker at {secure_kafka_broker.bootstrap} does not enable SASL"
        f" mechanism {mechanism} (it offers SCRAM-SHA-512); set"
        " STREAMLEARN_KAFKA_SASL_MECHANISM to SCRAM-SHA-512"
    )
    for secret in secrets_of(secure_kafka_broker):
        assert secret not in output


def test_plaintext_to_the_secure_port_is_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    line, _ = failed_start(
        secure_kafka_broker,
        tmp_path,
        drop=(
            "STREAMLEARN_KAFKA_SASL_MECHANISM",
            "STREAMLEARN_KAFKA_SASL_USERNAME",
            "STREAMLEARN_KAFKA_SASL_PASSWORD",
            "STREAMLEARN_KAFKA_SSL_CAFILE",
        ),
        STREAMLEARN_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
    )
    assert "is the security protocol right?" in line
    assert "STREAMLEARN_KAFKA_SECURITY_PROTOCOL is PLAINTEXT" in line


def test_topics_outside_the_acl_grant_are_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    prefix = f"denied{uuid.uuid4().hex[:8]}."
    line, output = failed_start(secure_kafka_broker, tmp_path, prefix=prefix)
    assert line == (
        f"streamlearn: the Kafka user 'streamlearn' may not create topic '{prefix}events' (ACL);"
        f" grant it CREATE, WRITE and READ on the prefix '{prefix}', or create the topics"
        " yourself"
    )
    for secret in secrets_of(secure_kafka_broker):
        assert secret not in output


def test_a_consumer_group_outside_the_acl_grant_is_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    app_id = f"denied{uuid.uuid4().hex[:8]}"
    line, _ = failed_start(secure_kafka_broker, tmp_path, STREAMLEARN_APP_ID=app_id)
    assert line == (
        f"streamlearn: the Kafka user 'streamlearn' may not use the consumer group '{app_id}'"
        f" (ACL); grant it READ on the group prefix '{app_id}', or set STREAMLEARN_APP_ID to a"
        " group it may use"
    )


def test_a_replay_outside_the_acl_grant_is_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    node = NodeProcess(
        tmp_path,
        secure_kafka_broker.bootstrap,
        MODELS,
        "denied.",
        **secure_kafka_broker.client_env(),
    )
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", "river:Phishing", "--model", "phishing",
         "--limit", "10", "--quiet"],
        env=node.env, cwd=tmp_path, capture_output=True, text=True, timeout=EXIT_WITHIN,
        check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Traceback" not in output
    assert output.strip() == (
        "streamlearn: the Kafka user 'streamlearn' may not write topic 'denied.events' (ACL);"
        " grant it WRITE on the prefix 'denied.'"
    )


def test_a_secured_node_learns_and_never_shows_its_password(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    env = secure_kafka_broker.client_env()
    password = env["STREAMLEARN_KAFKA_SASL_PASSWORD"]
    node = NodeProcess(tmp_path, secure_kafka_broker.bootstrap, MODELS, granted_prefix(), **env)
    # This test's own clients, secured from the same settings as the node's.
    settings = Settings.model_validate(
        {name.removeprefix("STREAMLEARN_").lower(): value for name, value in env.items()}
    )
    try:
        node.start()
        events = [
            orjson.dumps({"event_id": f"e{i}", "model": "phishing", "features": {"a": i},
                          "label": i % 2 == 0})
            for i in range(20)
        ]  # fmt: skip
        bootstrap = secure_kafka_broker.bootstrap
        run(
            produce(
                bootstrap, node.topic("events"), events, b"phishing", **client_options(settings)
            )
        )
        node.wait_for("phishing", "n_learned", 20)
        predictions = run(
            consume(bootstrap, node.topic("predictions"), 20, **client_options(settings))
        )
        assert predictions
        for path in ("/", "/models", "/models/phishing", "/metrics", "/readyz", "/openapi.json"):
            assert password not in node.get(path).text, path
    finally:
        node.stop()
    log = node.log.read_text(errors="replace")
    assert "phishing" in log  # the node did log while it worked
    assert password not in log


def test_a_replication_factor_the_cluster_cannot_give_is_one_line(
    secure_kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    """A managed cluster wants STREAMLEARN_TOPIC_REPLICATION_FACTOR=3; one broker cannot."""
    line, _ = failed_start(secure_kafka_broker, tmp_path, STREAMLEARN_TOPIC_REPLICATION_FACTOR="3")
    assert line.startswith("streamlearn: the broker refused to create topic 'sl")
    assert "the target replication factor of 3 cannot be reached" in line.lower()
    assert line.endswith("set STREAMLEARN_TOPIC_REPLICATION_FACTOR (now 3) to what the cluster"
                         " can give")  # fmt: skip
