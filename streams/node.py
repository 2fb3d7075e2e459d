"""A node: everything one ``streamlearn worker`` process owns, built once and wired together.

:func:`build_node` is the composition root of the Faust side: it constructs each part and
hands every other part what it needs, explicitly. The HTTP side (:func:`app.main.create_api`)
takes its parts from the :class:`Node`; nothing else reaches into it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.registry import CollectorRegistry

from streams.admin import Admin
from streams.agents.learn import Learner, register_learn_agents
from streams.agents.metrics import register_metrics_timer
from streams.agents.publish import Publisher
from streams.app import create_faust_app
from streams.audit import AuditTrail
from streams.cluster import Cluster
from streams.deployments import Deployments
from streams.gate import RequestGate
from streams.learning.catalog import Catalog, load_templates
from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore, load_key
from streams.learning.spec import load_specs
from streams.models_topic import ModelsTopic
from streams.ownership import Ownership
from streams.rebalance import Lifecycle
from streams.settings import Settings
from streams.snapshot_topic import SnapshotTopic
from streams.telemetry import build_http_latency, build_prometheus_registry
from streams.topics import Topics, declare_topics
from streams.tuning.jobs import TuningJobs
from streams.tuning.race import join_race


@dataclass(frozen=True)
class Node:
    """The parts of one node."""

    settings: Settings
    app: Any
    topics: Topics
    registry: ModelRegistry
    store: SnapshotStore
    cluster: Cluster
    lifecycle: Lifecycle
    ownership: Ownership
    admin: Admin
    #: The model registry on the models topic: deploy, change, retire (started by the worker).
    deployments: Deployments
    #: Every call of an admin route, on the audit topic and in the log.
    audit: AuditTrail
    #: Learning yields to the HTTP requests it counts.
    gate: RequestGate
    prometheus: CollectorRegistry
    #: Tuning jobs, each in a process of its own (started and stopped with the HTTP side).
    tuning: TuningJobs
    #: Observed by the HTTP side for every request (in ``prometheus``).
    http_latency: Histogram


def build_node(settings: Settings) -> Node:
    """Load the model specs, create the Faust app, declare topics and register agents."""
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
    cluster = Cluster(app)
    key = settings.snapshot_key
    configured = key.get_secret_value() if key is not None else None
    store = SnapshotStore(
        settings.state_dir / "snapshots",
        load_key(configured, settings.state_dir),
        settings.snapshot_retention,
    )
    snapshot_topic = SnapshotTopic(settings, topics.snapshots_topic, store)
    lifecycle = Lifecycle(
        registry, store, snapshot_topic, assignment=cluster.assignment, catalog=Catalog()
    )
    cluster.on_rebalance(
        resume=lifecycle.resume_positions,
        revoked=lifecycle.hand_over,
        assigned=lifecycle.on_assigned,
    )
    ownership = Ownership(cluster, registry, lifecycle)
    prometheus = build_prometheus_registry(registry, ownership)
    crashes = Counter(
        "streamlearn_agent_crashes",
        "Takes an agent failed on (a broker or disk failure, never data) and redelivered.",
        registry=prometheus,
    )
    gate = RequestGate()
    deployments = Deployments(
        registry, lifecycle, ModelsTopic(settings), specs, load_templates(settings.models)
    )
    cluster.on_shutdown(deployments.stop)
    learner = Learner(topics, lifecycle, gate, cluster.seek, crashes, settings.max_event_bytes,
                      on_created=deployments.register)  # fmt: skip
    register_learn_agents(app, topics, registry, learner)
    register_metrics_timer(
        app, registry, ownership.is_live, topics.metrics_topic, settings.metrics_interval_seconds
    )
    admin = Admin(registry, lifecycle, store, snapshot_topic, Publisher(topics))

    async def join(model: str, job: str, progress: dict[str, Any]) -> dict[str, Any]:
        return await join_race(deployments, model, job, progress)

    tuning = TuningJobs(settings.state_dir / "tuning", on_done=join)
    return Node(
        settings=settings,
        app=app,
        topics=topics,
        registry=registry,
        store=store,
        cluster=cluster,
        lifecycle=lifecycle,
        ownership=ownership,
        admin=admin,
        deployments=deployments,
        audit=AuditTrail(topics.audit_topic),
        gate=gate,
        prometheus=prometheus,
        tuning=tuning,
        http_latency=build_http_latency(prometheus),
    )
