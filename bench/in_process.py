"""What is measured in this process, without Kafka: the raw River loop, the learning core,
memory, and the cost of challengers."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import orjson
from harness import rows
from river import metrics

from streams.learning.build import build_estimator
from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec
from streams.settings import Settings

Data = list[tuple[dict[str, Any], int]]


def default_spec(name: str, pipeline: str) -> ModelSpec:
    """What a user gets for a binary model: every field but the pipeline left to its default
    (the task's six metrics, ``preprocess = "auto"``, a snapshot every 10,000 events)."""
    return ModelSpec(name=name, task="binary", pipeline=pipeline)


def accuracy_only_spec(name: str, pipeline: str) -> ModelSpec:
    """The settings that flatter the node: Accuracy alone, no auto stage, snapshots off."""
    return ModelSpec(
        name=name,
        task="binary",
        pipeline=pipeline,
        preprocess="none",
        metrics=("Accuracy",),
        snapshot_every=100_000_000,
    )


def river_loop(spec: ModelSpec, data: Data) -> float:
    """Events/s of River alone on the objects the node runs for ``spec`` (a classifier): the
    estimator built as the node builds it (the auto stage included when the spec asks), one
    cumulative River metric per name of the spec. Per event, as progressive validation does:
    ``predict_proba_one``, each metric updated with what it reads (the probabilities, or the
    most probable class), then ``learn_one``. No I/O, no checks, no rolling windows."""
    model = build_estimator(spec)
    scored = [getattr(metrics, name)() for name in spec.metrics]
    scorers = [(metric, not metric.requires_labels) for metric in scored]
    started = time.perf_counter()
    for x, y in data:
        proba = model.predict_proba_one(x)
        if proba:
            y_pred = max(proba, key=proba.get)
            for metric, wants_proba in scorers:
                metric.update(y, proba if wants_proba else y_pred)
        model.learn_one(x, y)
    return len(data) / (time.perf_counter() - started)


def raw_loop(pipeline: str, data: Data) -> float:
    """Events/s of River alone with Accuracy only and no auto stage (what ``bench/scale.py``
    compares its nodes with)."""
    return river_loop(accuracy_only_spec("m", pipeline), data)


def core_registry(spec: ModelSpec) -> ModelRegistry:
    """The registry a node builds for ``spec`` with the default settings (limits, event size,
    input topics, partitions), as ``streams.node.build_node`` does."""
    settings = Settings()
    limits = Limits(
        dedupe_size=settings.dedupe_window_size,
        dedupe_seconds=settings.dedupe_window_seconds,
        pending_size=settings.pending_max_size,
        pending_seconds=settings.pending_ttl_seconds,
    )
    return ModelRegistry(
        {spec.name: spec},
        limits,
        max_event_bytes=settings.max_event_bytes,
        input_topics=(settings.topic_name("events"), settings.topic_name("labels")),
        partitions=settings.topic_partitions,
    )


def feed_core(registry: ModelRegistry, name: str, messages: list[bytes]) -> None:
    """Every message through ``ModelRegistry.handle_events`` on the model's own partition,
    each with its own time, as the node's agent hands them over."""
    topic = registry.input_topics[0]
    partition = registry.partition_of(name)
    for offset, value in enumerate(messages):
        registry.handle_events(
            value, topic=topic, partition=partition, offset=offset, now=time.time()
        )


def core_rate(spec: ModelSpec, messages: list[bytes], n: int) -> float:
    """Events/s of the learning core alone on ``messages`` (``n`` events): decoding,
    validation, dedupe, progressive validation, the journal and the prediction records; no
    Kafka, no Faust, no publishing, and snapshots only reported due, never taken."""
    registry = core_registry(spec)
    started = time.perf_counter()
    feed_core(registry, spec.name, messages)
    return n / (time.perf_counter() - started)


def memory(pipeline: str) -> dict[str, float]:
    """Bytes a model holds after 200 events (100 models, ``pipeline``, no auto stage), and
    bytes per pending prediction (10,000 events without labels)."""
    spec = ModelSpec(name="m", task="binary", pipeline=pipeline, preprocess="none")
    data = rows(200)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    registry = ModelRegistry(
        {f"m{i}": spec.model_copy(update={"name": f"m{i}"}) for i in range(100)},
        Limits(),
        max_event_bytes=10**6,
    )
    for name in registry.models:
        for i, (x, y) in enumerate(data):
            registry.handle_events(
                orjson.dumps({"event_id": str(i), "model": name, "features": x, "label": y}),
                topic="e",
                partition=0,
                offset=i,
                now=0.0,
            )
    per_model = (tracemalloc.get_traced_memory()[0] - before) / 100
    before = tracemalloc.get_traced_memory()[0]
    for i, (x, _) in enumerate(rows(10_000)):
        registry.handle_events(
            orjson.dumps({"event_id": f"p{i}", "model": "m0", "features": x}),
            topic="e",
            partition=0,
            offset=i,
            now=0.0,
        )
    per_pending = (tracemalloc.get_traced_memory()[0] - before) / 10_000
    tracemalloc.stop()
    return {
        "bytes_per_model_after_200_events": per_model,
        "bytes_per_pending_prediction": per_pending,
    }


def challenger_cost(pipeline: str, messages: list[bytes], n: int) -> dict[str, Any]:
    """Learning-core events/s with k challengers (copies of the linear ``pipeline`` with other
    l2), and the ratio to k = 0. In process: the cost the node adds per event is the same."""
    out: dict[str, Any] = {}
    for k in (0, 1, 3):
        search = (
            {"grid": {"LogisticRegression.l2": [0.001 * (i + 1) for i in range(k)]}, "budget": k}
            if k
            else None
        )
        spec = ModelSpec(
            name="m",
            task="binary",
            pipeline=pipeline,
            preprocess="none",
            metrics=("Accuracy",),
            search=search,
        )
        registry = ModelRegistry({"m": spec}, Limits(), max_event_bytes=10**7)
        started = time.perf_counter()
        for i, value in enumerate(messages):
            registry.handle_events(value, topic="e", partition=0, offset=i, now=0.0)
        out[f"k{k}_per_s"] = n / (time.perf_counter() - started)
    for k in (1, 3):
        out[f"k{k}_over_k0"] = out[f"k{k}_per_s"] / out["k0_per_s"]
    return out
