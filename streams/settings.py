"""One typed settings object per process, read from ``STREAMLEARN_*`` environment variables."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    """Everything a node, the CLI and the local broker read from the environment."""

    # Validation errors never echo what was given: the input holds the Kafka password.
    model_config = SettingsConfigDict(
        env_prefix="STREAMLEARN_", extra="ignore", hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    #: How long a worker waits at start-up for a broker to answer before it stops with one
    #: line naming the address: a broker started at the same moment needs a few seconds.
    kafka_connect_timeout_seconds: float = Field(default=30.0, gt=0)
    #: How every Kafka client of the project (Faust's, the admin client, the start-up probe,
    #: replay, the snapshot reader) talks to the broker; the default changes nothing.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: The CA that signed the broker's certificate; without it, the system's trust store
    #: (what managed services such as Confluent Cloud or MSK need).
    kafka_ssl_cafile: Path | None = None
    #: A client certificate and its (unencrypted PEM) key, for brokers that require mutual TLS.
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True
    topic_prefix: str = "streamlearn."
    topic_partitions: int = Field(default=12, ge=1)
    #: Copies of each topic the node creates (its contract topics and Faust's own); 1 suits
    #: the local broker, a managed cluster wants 3 (Confluent Cloud refuses anything else).
    topic_replication_factor: int = Field(default=1, ge=1, le=32)
    app_id: str = "streamlearn"
    models: Path = Path("models.toml")
    state_dir: Path = Path(".state")
    admin_token: SecretStr | None = None
    snapshot_key: SecretStr | None = None
    snapshot_retention: int = Field(default=5, ge=1)
    #: Snapshots up to this size travel whole on the snapshots topic, so any node on any
    #: machine can restore them; larger ones travel as a pointer to the local file.
    snapshot_inline_max_bytes: int = Field(default=32 * 1024 * 1024, ge=65_536, le=90_000_000)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    #: How the other nodes of the group reach this one; by default built from the host and
    #: port (when binding every interface, from this machine's address towards the broker).
    advertised_url: str | None = None
    #: The node ``streamlearn models`` and ``snapshot`` talk to (any node of the group); by
    #: default the one at ``http_host``:``http_port``.
    api_url: str | None = None
    #: A node silent this long (kill -9, a lost machine) is dropped from the group and its
    #: models move to the others.
    session_timeout_seconds: float = Field(default=10.0, ge=6.0, le=300.0)
    forward_timeout_seconds: float = Field(default=10.0, gt=0)

    max_event_bytes: int = Field(default=1_048_576, ge=1024)
    max_request_bytes: int = Field(default=8_388_608, ge=1024)
    dedupe_window_size: int = Field(default=100_000, ge=1)
    dedupe_window_seconds: float = Field(default=86_400.0, gt=0)
    pending_max_size: int = Field(default=100_000, ge=1)
    pending_ttl_seconds: float = Field(default=3_600.0, gt=0)
    metrics_interval_seconds: float = Field(default=10.0, gt=0)

    #: ``text`` for a person at a terminal; ``json``: one JSON object per line, for a log
    #: pipeline (every line the worker writes, Faust's, aiokafka's and uvicorn's included).
    log_format: LogFormat = "text"
    #: How long the audit topic keeps each admin call; applies when the node creates it.
    audit_retention_days: int = Field(default=90, ge=1, le=36_500)

    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        """Accept ``kafka://host:port`` as well as ``host:port``."""
        return value.removeprefix("kafka://").strip()

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        """Accept ``sasl_ssl`` and ``scram-sha-512`` as Kafka's own clients do."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        """Accept ``JSON`` as well as ``json``."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """A TLS file is checked now, so that a typo stops the process before it connects."""
        if value is None:
            return None
        name = f"STREAMLEARN_{str(info.field_name).upper()}"
        if not value.is_file():
            raise ValueError(f"{name}: {value} is not a file")
        if not os.access(value, os.R_OK):
            raise ValueError(f"{name}: {value} is not readable by this user")
        return value

    @model_validator(mode="after")
    def _complete_security(self) -> Self:
        """SASL needs a mechanism, a username and a password; a certificate needs its key."""
        protocol = self.kafka_security_protocol
        sasl = {
            "STREAMLEARN_KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism,
            "STREAMLEARN_KAFKA_SASL_USERNAME": self.kafka_sasl_username,
            "STREAMLEARN_KAFKA_SASL_PASSWORD": self.kafka_sasl_password,
        }
        missing = [name for name, value in sasl.items() if not value]
        if self.kafka_uses_sasl and missing:
            raise ValueError(
                f"STREAMLEARN_KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}"
            )
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError(
                "STREAMLEARN_KAFKA_SSL_CERTFILE and STREAMLEARN_KAFKA_SSL_KEYFILE go together:"
                " a client certificate needs its key, and a key its certificate"
            )
        return self

    @property
    def kafka_uses_tls(self) -> bool:
        """Whether connections to the broker are TLS (``SSL`` or ``SASL_SSL``)."""
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_uses_sasl(self) -> bool:
        """Whether the client authenticates with SASL (``SASL_PLAINTEXT`` or ``SASL_SSL``)."""
        return self.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def bootstrap_host(self) -> str:
        """Host of the first bootstrap server."""
        return self.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[0]

    @property
    def bootstrap_port(self) -> int:
        """Port of the first bootstrap server."""
        return int(self.kafka_bootstrap_servers.split(",")[0].rsplit(":", 1)[1])

    @property
    def node_url(self) -> str:
        """The URL this node advertises to its group (and names itself by)."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = self.http_host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - recognising the wildcard, not binding
            host = self._address_towards_kafka()
        return f"http://{host}:{self.http_port}"

    @property
    def max_message_bytes(self) -> int:
        """The largest message a node writes (a whole snapshot, with room for its framing)."""
        return max(1_048_576, self.snapshot_inline_max_bytes + 65_536)

    def _address_towards_kafka(self) -> str:
        """This machine's address on the network that reaches the broker (a container's or
        a pod's IP): the other nodes reach this one there. No packet is sent."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((self.bootstrap_host, self.bootstrap_port))
                address: str = probe.getsockname()[0]
            except OSError:
                return socket.gethostname()
        return address

    def topic_name(self, name: str) -> str:
        """Full topic name for a contract topic (``events`` -> ``streamlearn.events``)."""
        return f"{self.topic_prefix}{name}"
