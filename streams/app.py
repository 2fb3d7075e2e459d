"""The Faust application of a node, configured from its settings."""

from __future__ import annotations

from streams.cluster import StreamlearnApp
from streams.credentials import broker_credentials
from streams.settings import Settings


def create_faust_app(settings: Settings) -> StreamlearnApp:
    """Construct the Faust app for ``settings``; agents and topics are added by the node."""
    datadir = settings.state_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    return StreamlearnApp(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        # Faust passes them to its consumer, its producer and the client creating topics.
        broker_credentials=broker_credentials(settings),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.max_message_bytes,
        datadir=str(datadir),
        store="memory://",
        web_bind=settings.http_host,
        web_port=settings.http_port,
        web_host=settings.http_host,
        canonical_url=settings.node_url,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.session_timeout_seconds / 5,
    )
