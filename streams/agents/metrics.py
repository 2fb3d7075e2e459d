"""A timer that publishes every model's metrics on the ``metrics`` topic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from streams.learning.records import MetricsReport

if TYPE_CHECKING:
    from streams.node import Node


def register_metrics_timer(node: Node) -> None:
    """Every ``metrics_interval_seconds``, one message per model live here that has learned."""
    registry = node.registry
    metrics_topic = node.topics.metrics_topic

    @node.app.timer(interval=node.settings.metrics_interval_seconds)  # type: ignore[untyped-decorator]
    async def publish_metrics() -> None:
        ts = datetime.now(tz=UTC).isoformat()
        for model in registry:
            if not model.n_learned or not node.owns(model.name):
                continue
            report = MetricsReport(
                model.name, ts, model.n_learned, model.metrics.cumulative(),
                model.metrics.rolling(), model.metrics.window,
                model.leaderboard() if model.challengers else None,
            )  # fmt: skip
            await metrics_topic.send(key=model.name.encode(), value=report.encode())
