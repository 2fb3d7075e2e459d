"""A node: the Faust app, its topics, the models it learns, and the readiness it reports."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from prometheus_client.registry import CollectorRegistry

from streams.app import create_faust_app
from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.learning.spec import load_specs
from streams.recovery import Recovery, snapshot_key
from streams.settings import Settings
from streams.telemetry import build_prometheus_registry
from streams.topics import Topics, declare_topics


@dataclass
class Node:
    """Everything one ``streamlearn worker`` process owns, built once and injected."""

    settings: Settings
    app: Any
    topics: Topics
    registry: ModelRegistry
    node_id: str
    prometheus: CollectorRegistry
    recovery: Recovery
    #: HTTP requests being answered right now; learning yields to them between slices.
    http_inflight: int = 0

    def ready(self) -> tuple[bool, str]:
        """Readiness: the consumer has joined the group and holds its partitions."""
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return False, "the Kafka consumer has not started"
        if self.app.rebalancing:
            return False, "the consumer group is rebalancing"
        assigned = {tp.topic for tp in consumer.assignment()}
        if self.settings.topic_name("events") not in assigned:
            return False, "no partition of the events topic is assigned yet"
        if not self.recovery.restored:
            return False, "models are being restored from their snapshots"
        return True, "ready"


def build_node(settings: Settings) -> Node:
    """Load the model specs, create the Faust app, declare topics and register agents."""
    # Imported here so the learning core and the CLI's other commands stay light.
    from streams.agents.learn import register_learn_agents
    from streams.agents.metrics import register_metrics_timer

    specs = load_specs(settings.models)
    app = create_faust_app(settings)
    limits = Limits(
        dedupe_size=settings.dedupe_window_size,
        dedupe_seconds=settings.dedupe_window_seconds,
        pending_size=settings.pending_max_size,
        pending_seconds=settings.pending_ttl_seconds,
    )
    registry = ModelRegistry(
        specs,
        limits,
        max_event_bytes=settings.max_event_bytes,
        input_topics=(settings.topic_name("events"), settings.topic_name("labels")),
        partitions=settings.topic_partitions,
    )
    topics = declare_topics(app, settings)
    store = SnapshotStore(
        settings.state_dir / "snapshots", snapshot_key(settings), settings.snapshot_retention
    )
    recovery = Recovery(settings, registry, store, topics.snapshots_topic, topics.promotions_topic)
    app.resume_positions = recovery.resume_positions
    node = Node(
        settings=settings,
        app=app,
        topics=topics,
        registry=registry,
        node_id=f"{socket.gethostname()}:{settings.http_port}",
        prometheus=build_prometheus_registry(registry),
        recovery=recovery,
    )
    register_learn_agents(node)
    register_metrics_timer(node)

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def snapshot_on_shutdown(sender: Any, **kwargs: Any) -> None:
        async with recovery.lock:
            for name in sorted(recovery.live):
                recovery.take(registry.get(name))

    return node
