"""A timer that publishes every model's metrics on the ``metrics`` topic."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from streams.learning.model import OnlineModel
from streams.learning.records import MetricsReport


def metrics_reports(
    models: Iterable[OnlineModel], is_live: Callable[[str], bool], ts: str
) -> Iterator[MetricsReport]:
    """One report per model live here that has learned."""
    for model in models:
        if not model.n_learned or not is_live(model.name):
            continue
        yield MetricsReport(
            model.name, ts, model.n_learned, model.metrics.cumulative(),
            model.metrics.rolling(), model.metrics.window,
            model.leaderboard() if model.challengers else None,
        )  # fmt: skip


def register_metrics_timer(
    app: Any,
    models: Iterable[OnlineModel],
    is_live: Callable[[str], bool],
    metrics_topic: Any,
    interval: float,
) -> None:
    """Every ``interval`` seconds, one message per model live here that has learned."""

    @app.timer(interval=interval)  # type: ignore[untyped-decorator]
    async def publish_metrics() -> None:
        ts = datetime.now(tz=UTC).isoformat()
        for report in metrics_reports(models, is_live, ts):
            await metrics_topic.send(key=report.model.encode(), value=report.encode())
