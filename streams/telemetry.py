"""Prometheus metrics, read from the live models at scrape time.

A custom collector costs nothing on the per-event path: the counters the models keep anyway
are turned into Prometheus samples only when ``/metrics`` is scraped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from streams.learning.registry import ModelRegistry
from streams.ownership import Ownership
from streams.recovery import Recovery

NAMESPACE = "streamlearn"

_COUNTERS = (
    ("events", "n_events", "Valid events received, duplicates included."),
    ("predictions", "n_predicted", "Predictions made and published."),
    ("learned", "n_learned", "Labelled events learned."),
    ("duplicates", "n_duplicates", "Events skipped because their event_id was seen already."),
    ("dead_letters", "n_dead_letters", "Malformed events sent to the dead-letter topic."),
    ("missing_values", "n_missing_values", "Feature values that were null or non-finite."),
    ("pending_expired", "n_pending_expired", "Predictions that left the pending store unlabelled."),
    ("labels_unmatched", "n_labels_unmatched", "Labels whose event never came."),
    ("labels_duplicate", "n_labels_duplicate", "Second labels for an event already labelled."),
    ("drifts", "n_drifts", "Drift detections on the error stream."),
    ("model_errors", "n_model_errors", "Events River raised on; the model was rewound."),
    ("features_dropped", "n_features_dropped", "New feature names past max_features."),
)


class ModelCollector(Collector):
    """Per-model counters and metric values of the models live on this node (so that the
    series of several nodes add up), with low-cardinality labels."""

    def __init__(self, registry: ModelRegistry, recovery: Recovery) -> None:
        self.registry = registry
        self.recovery = recovery

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        models = [m for m in self.registry if m.name in self.recovery.live]
        for name, attribute, documentation in _COUNTERS:
            family = CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=["model"])
            for model in models:
                family.add_metric([model.name], getattr(model, attribute))
            yield family
        unrouted = CounterMetricFamily(
            f"{NAMESPACE}_dead_letters_node",
            "Dead letters on this node, including those naming no known model.",
        )
        unrouted.add_metric([], self.registry.n_dead_letters)
        yield unrouted
        version = GaugeMetricFamily(
            f"{NAMESPACE}_model_version", "Current version of the model.", labels=["model"]
        )
        pending = GaugeMetricFamily(
            f"{NAMESPACE}_pending_labels", "Predictions waiting for their label.", labels=["model"]
        )
        score = GaugeMetricFamily(
            f"{NAMESPACE}_model_metric",
            "Progressive-validation metric of the model.",
            labels=["model", "metric", "window"],
        )
        for model in models:
            version.add_metric([model.name], model.model_version)
            pending.add_metric([model.name], model.n_pending_labels)
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
        yield score
        yield candidates


class NodeCollector(Collector):
    """This node's place in the group: the partitions and models it holds, and its lag."""

    def __init__(self, ownership: Ownership, recovery: Recovery) -> None:
        self.ownership = ownership
        self.recovery = recovery

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
        for name in sorted(self.recovery.live):
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


def build_prometheus_registry(
    registry: ModelRegistry, recovery: Recovery, ownership: Ownership
) -> CollectorRegistry:
    """A registry of this node's own, so that tests and several nodes never share one."""
    prometheus = CollectorRegistry(auto_describe=True)
    prometheus.register(ModelCollector(registry, recovery))
    prometheus.register(NodeCollector(ownership, recovery))
    return prometheus
