"""Prometheus metrics, read from the live models at scrape time.

A custom collector costs nothing on the per-event path: the counters the models keep anyway
are turned into Prometheus samples only when ``/metrics`` is scraped. The alert rules of
``deploy/prometheus/alerts.yml`` read these series.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from streams.learning.counters import COUNTERS
from streams.learning.registry import ModelRegistry
from streams.ownership import Ownership

NAMESPACE = "streamlearn"


class ModelCollector(Collector):
    """Per-model counters and metric values of the models live on this node (so that the
    series of several nodes add up), with low-cardinality labels."""

    def __init__(self, registry: ModelRegistry, ownership: Ownership) -> None:
        self.registry = registry
        self.ownership = ownership

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        models = [m for m in self.registry if self.ownership.is_live(m.name)]
        for attribute, counter in COUNTERS.items():
            family = CounterMetricFamily(
                f"{NAMESPACE}_{counter.metric}", counter.help, labels=["model"]
            )
            for model in models:
                family.add_metric([model.name], getattr(model.counters, attribute))
            yield family
        unrouted = CounterMetricFamily(
            f"{NAMESPACE}_dead_letters_node",
            "Dead letters on this node, including those naming no known model.",
        )
        unrouted.add_metric([], self.registry.n_dead_letters)
        yield unrouted
        moved = CounterMetricFamily(
            f"{NAMESPACE}_rerouted_node",
            "Events and labels this node moved to their model's partition (each model counts"
            " those it received in streamlearn_rerouted_total).",
        )
        moved.add_metric([], self.registry.n_rerouted)
        yield moved
        version = GaugeMetricFamily(
            f"{NAMESPACE}_model_version", "Current version of the model.", labels=["model"]
        )
        pending = GaugeMetricFamily(
            f"{NAMESPACE}_pending_labels", "Predictions waiting for their label.", labels=["model"]
        )
        pending_max = GaugeMetricFamily(
            f"{NAMESPACE}_pending_labels_max",
            "Predictions a model keeps waiting for their label (STREAMLEARN_PENDING_MAX_SIZE).",
            labels=["model"],
        )
        alert_below = GaugeMetricFamily(
            f"{NAMESPACE}_model_metric_alert_below",
            "The rolling metric value under which an alert fires (alert_below in the models file).",
            labels=["model", "metric"],
        )
        score = GaugeMetricFamily(
            f"{NAMESPACE}_model_metric",
            "Progressive-validation metric of the model.",
            labels=["model", "metric", "window"],
        )
        for model in models:
            version.add_metric([model.name], model.model_version)
            pending.add_metric([model.name], model.n_pending_labels)
            pending_max.add_metric([model.name], self.registry.limits.pending_size)
            for metric, threshold in model.spec.alert_below.items():
                alert_below.add_metric([model.name, metric], threshold)
            for window, values in (
                ("cumulative", model.metrics.cumulative()),
                ("rolling", model.metrics.rolling()),
            ):
                for metric, value in values.items():
                    if math.isfinite(value):
                        score.add_metric([model.name, metric, window], value)
        candidates = GaugeMetricFamily(
            f"{NAMESPACE}_candidate_metric",
            "Progressive-validation metric of each challenger, next to the champion.",
            labels=["model", "candidate", "metric", "window"],
        )
        for model in models:
            for challenger in model.challengers:
                for window, values in (
                    ("cumulative", challenger.metrics.cumulative()),
                    ("rolling", challenger.metrics.rolling()),
                ):
                    for metric, value in values.items():
                        if math.isfinite(value):
                            candidates.add_metric(
                                [model.name, challenger.name, metric, window], value
                            )
        yield version
        yield pending
        yield pending_max
        yield score
        yield alert_below
        yield candidates


class NodeCollector(Collector):
    """This node's place in the group: the partitions and models it holds, and its lag."""

    def __init__(self, ownership: Ownership) -> None:
        self.ownership = ownership

    def collect(self) -> Iterator[GaugeMetricFamily]:
        node = self.ownership.url
        info = GaugeMetricFamily(
            f"{NAMESPACE}_node_info", "This node, by the URL its group knows it by.",
            labels=["node"],
        )  # fmt: skip
        info.add_metric([node], 1)
        members = GaugeMetricFamily(
            f"{NAMESPACE}_group_members", "Nodes in the consumer group, as of the last rebalance."
        )
        members.add_metric([], len(self.ownership.members()))
        owned = GaugeMetricFamily(
            f"{NAMESPACE}_model_owned", "1 for each model live on this node.",
            labels=["node", "model"],
        )  # fmt: skip
        for name in self.ownership.live():
            owned.add_metric([node, name], 1)
        assigned = GaugeMetricFamily(
            f"{NAMESPACE}_partition_assigned", "1 for each input partition this node holds.",
            labels=["node", "topic", "partition"],
        )  # fmt: skip
        lag = GaugeMetricFamily(
            f"{NAMESPACE}_consumer_lag",
            "Messages on an input partition of this node not handled yet.",
            labels=["node", "topic", "partition"],
        )
        for state in self.ownership.partitions():
            labels = [node, state.topic, str(state.partition)]
            assigned.add_metric(labels, 1)
            if state.lag is not None:
                lag.add_metric(labels, state.lag)
        yield from (info, members, owned, assigned, lag)


#: Seconds: prometheus_client's default buckets, with finer ones below 5 ms where a
#: prediction is answered.
HTTP_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def build_http_latency(prometheus: CollectorRegistry) -> Histogram:
    """The HTTP request-latency histogram, in ``prometheus`` (observed by
    :class:`app.latency.RequestLatency`)."""
    return Histogram(
        f"{NAMESPACE}_http_request_duration_seconds",
        "Time to answer an HTTP request, by method, route template and status class.",
        labelnames=("method", "route", "status"),
        buckets=HTTP_LATENCY_BUCKETS,
        registry=prometheus,
    )


def build_prometheus_registry(registry: ModelRegistry, ownership: Ownership) -> CollectorRegistry:
    """A registry of this node's own, so that tests and several nodes never share one."""
    prometheus = CollectorRegistry(auto_describe=True)
    prometheus.register(ModelCollector(registry, ownership))
    prometheus.register(NodeCollector(ownership))
    return prometheus
