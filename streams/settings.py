"""One typed settings object per process, read from ``STREAMLEARN_*`` environment variables."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a node, the CLI and the local broker read from the environment."""

    model_config = SettingsConfigDict(env_prefix="STREAMLEARN_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    #: How long a worker waits at start-up for a broker to answer before it stops with one
    #: line naming the address: a broker started at the same moment needs a few seconds.
    kafka_connect_timeout_seconds: float = Field(default=30.0, gt=0)
    topic_prefix: str = "streamlearn."
    topic_partitions: int = Field(default=12, ge=1)
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

    kafka_version: str = "4.1.1"
    kafka_heap: str = "512m"

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        """Accept ``kafka://host:port`` as well as ``host:port``."""
        return value.removeprefix("kafka://").strip()

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
