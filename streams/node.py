"""A node: the Faust app, its topics, the models it learns, and the readiness it reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter
from prometheus_client.registry import CollectorRegistry

from streams.app import create_faust_app
from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.learning.spec import load_specs
from streams.ownership import Ownership
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
    #: The URL the group knows this node by; also its name in ``owner`` fields.
    node_id: str
    prometheus: CollectorRegistry
    recovery: Recovery
    ownership: Ownership
    #: HTTP requests being answered right now; learning yields to them between slices.
    http_inflight: int = 0
    #: Takes an agent failed on (not data: a broker or disk failure) and redelivered.
    agent_crashes: Counter | None = None

    def owns(self, name: str) -> bool:
        """The model is live here: this node holds its partition and has restored it."""
        return name in self.recovery.live

    def ready(self) -> tuple[bool, str]:
        """Readiness: the consumer has joined the group and the models it holds are live.

        A node holding no partition (more nodes than partitions) is ready too: it answers
        every route by forwarding to the owners.
        """
        consumer = getattr(self.app, "_consumer", None)
        if consumer is None:
            return False, "the Kafka consumer has not started"
        if self.app.rebalancing:
            return False, "the consumer group is rebalancing"
        if not self.recovery.assigned:
            return False, "the consumer has not joined the group yet"
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
    recovery.current_assignment = lambda: set(app.consumer.assignment())
    # The URL as Faust normalised it (``http://h:80`` is ``http://h``): the form peers see.
    url = str(app.conf.canonical_url)
    ownership = Ownership(app, registry, url)
    prometheus = build_prometheus_registry(registry, recovery, ownership)
    node = Node(
        settings=settings,
        app=app,
        topics=topics,
        registry=registry,
        node_id=url,
        prometheus=prometheus,
        recovery=recovery,
        ownership=ownership,
        agent_crashes=Counter(
            "streamlearn_agent_crashes",
            "Takes an agent failed on (a broker or disk failure, never data) and redelivered.",
            registry=prometheus,
        ),
    )
    register_learn_agents(node)
    register_metrics_timer(node)

    # Aiokafka rebalances eagerly: every partition is revoked, then the new assignment comes.
    @app.on_partitions_revoked.connect  # type: ignore[untyped-decorator]
    async def hand_over_on_revocation(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await recovery.hand_over()

    @app.on_partitions_assigned.connect  # type: ignore[untyped-decorator]
    async def drop_what_moved(sender: Any, assigned: Any, **kwargs: Any) -> None:
        recovery.on_assigned(set(assigned))

    @app.on_before_shutdown.connect  # type: ignore[untyped-decorator]
    async def hand_over_on_shutdown(sender: Any, **kwargs: Any) -> None:
        await recovery.hand_over()

    return node
