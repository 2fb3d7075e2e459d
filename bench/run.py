"""streamlearn's cost next to its two limits, measured side by side in one run.

    .venv/bin/python bench/run.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # smaller streams, for a smoke run

For each model, twice: with the default spec a user gets (the HEADLINE: the task's default
metrics, preprocess "auto", a snapshot every 10,000 events), and with the settings that
flatter the node (Accuracy only, preprocess "none", no snapshots). On River's Agrawal
stream, for each:
  raw      the raw River loop in this process, on the objects the node runs for that spec
           (its estimator built by the project's builder, its metrics updated cumulatively
           before learn_one as progressive validation does; no I/O)
  core     the learning core alone in this process: ModelRegistry.handle_events on the
           500-event messages (decoding, checks, dedupe, metrics, journal, records)
  single   a streamlearn node learning a backlog of one-event Kafka messages
  batched  the same node learning a backlog of 500-event messages
and, once: the Faust floor (an agent that only counts messages, same broker); a cProfile of
a running node (bench/profiled_worker.py) learning the linear model with the default spec,
its self time per event by category next to that of the core; the end-to-end latency at
200 and 1,000 events/s (after a warm-up) next to its floors (a plain Kafka echo and a Faust
echo at 1,000/s); HTTP predict latency idle, idle with one core burned and while learning
flat out, next to its floor (a FastAPI app alone, idle and with one core burned); memory per
model and per pending prediction; and the goals of issue 15, met or not.
Figures go to bench/results/latest.json.

The benchmarks start a local plaintext broker of their own, unless the environment names a
secured one (STREAMLEARN_KAFKA_SECURITY_PROTOCOL other than PLAINTEXT, with its
STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS and the other STREAMLEARN_KAFKA_* settings): every
client and node then uses that broker with those settings. Its ACLs must let the user
create, read and write topics and groups prefixed "b" (the nodes) and "floor-" (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from goals import check_goals
from harness import (
    RESULTS,
    ROOT,
    Node,
    broker,
    create_topic,
    event_messages,
    models_toml,
    prediction_times,
    produce,
    rows,
)
from in_process import (
    Data,
    accuracy_only_spec,
    challenger_cost,
    core_rate,
    default_spec,
    memory,
    raw_loop,
    river_loop,
)
from latency import cpu_hog, echo_floor, end_to_end, http_floor, http_predict
from node_profile import profile_core, profile_node
from tables import print_goals, print_profile, print_progress, print_summary, print_tables

from streams.learning.spec import ModelSpec
from streams.topics import create_topics

# What the other benchmarks import from here.
__all__ = [
    "BATCH",
    "MODELS",
    "RESULTS",
    "Node",
    "broker",
    "event_messages",
    "prediction_times",
    "produce",
    "raw_loop",
    "rows",
]

MODELS = {
    "linear": ("preprocessing.StandardScaler() | linear_model.LogisticRegression()", 40_000),
    "hoeffding": ("tree.HoeffdingTreeClassifier()", 20_000),
    "arf": ("forest.ARFClassifier(seed=1, n_models=5)", 4_000),
}
BATCH = 500
#: Events/s the end-to-end latency is measured at, with single-event messages.
RATES = (200, 1_000)
#: Rounds of the in-process measurements (raw loop and core), alternating; the best is kept.
ROUNDS = 3
#: The two rows of each model: the defaults a user gets, and the flattering settings.
SPECS: dict[str, Callable[[str, str], ModelSpec]] = {
    "headline": default_spec,
    "accuracy_only": accuracy_only_spec,
}


def node_throughput(bootstrap: str, spec: ModelSpec, data: Data, batch: int, tmp: Path) -> float:
    """Events/s of a node learning a backlog of ``data`` in ``batch``-event messages, from
    its first prediction published to its last."""
    node = Node(bootstrap, models_toml(spec), tmp / f"{spec.name}-{batch}-{uuid.uuid4().hex[:6]}")
    asyncio.run(create_topics(node.settings))
    messages = event_messages(spec.name, data, batch)
    asyncio.run(
        produce(bootstrap, node.settings.topic_name("events"), messages, spec.name.encode())
    )
    node.start()
    try:
        return node.learn_rate(spec.name, len(data))
    finally:
        node.stop()


def throughput_row(
    bootstrap: str, spec: ModelSpec, data: Data, floor: float, tmp: Path
) -> dict[str, Any]:
    """One row: the raw loop, the core, the node on single-event and on 500-event messages,
    all for ``spec``. The raw loop and the core take a few seconds each: they are measured
    :data:`ROUNDS` times, alternating, and the best of each is kept (this machine's speed
    moves by a fifth from one minute to the next)."""
    messages = event_messages(spec.name, data, BATCH)
    raw = core = 0.0
    for _ in range(ROUNDS):
        raw = max(raw, river_loop(spec, data))
        core = max(core, core_rate(spec, messages, len(data)))
    single = node_throughput(bootstrap, spec, data, 1, tmp)
    batched = node_throughput(bootstrap, spec, data, BATCH, tmp)
    ceiling = 1 / (1 / floor + 1 / raw)
    return {
        "pipeline": spec.pipeline,
        "spec": {
            "metrics": list(spec.metrics),
            "preprocess": spec.preprocess,
            "snapshot_every": spec.snapshot_every,
        },
        "events": len(data),
        "raw_per_s": raw,
        "core_per_s": core,
        "single_per_s": single,
        "batched_per_s": batched,
        "ceiling_per_s": ceiling,
        "single_over_ceiling": single / ceiling,
        "batched_over_raw": batched / raw,
        "node_over_core": batched / core,
        "core_over_raw": core / raw,
    }


def throughput(bootstrap: str, floor: float, scale: float, tmp: Path) -> dict[str, Any]:
    """The headline and the Accuracy-only rows of every model."""
    tables: dict[str, Any] = {table: {} for table in SPECS}
    for name, (pipeline, n) in MODELS.items():
        data = rows(max(4 * BATCH, int(n * scale)))
        for table, make_spec in SPECS.items():
            row = throughput_row(bootstrap, make_spec(name, pipeline), data, floor, tmp)
            tables[table][name] = row
            print_progress(table, name, row)
    return tables


def profile(bootstrap: str, scale: float, tmp: Path, results: dict[str, Any]) -> dict[str, Any]:
    """The breakdown of a node learning the linear model with the default spec, in 500-event
    messages, next to that of the learning core alone on the same messages."""
    pipeline, n = MODELS["linear"]
    spec = default_spec("linear", pipeline)
    data = rows(max(4 * BATCH, int(n * scale)))
    messages = event_messages(spec.name, data, BATCH)
    core_per_s = core_rate(spec, messages, len(data))
    linear = results.get("headline", {}).get("linear")
    node_per_s = (
        linear["batched_per_s"] if linear else node_throughput(bootstrap, spec, data, BATCH, tmp)
    )
    return {
        "model": "linear",
        "batch": BATCH,
        "unprofiled_us_per_event": 1e6 / node_per_s,
        "core_unprofiled_us_per_event": 1e6 / core_per_s,
        "node": profile_node(bootstrap, spec, data, BATCH, tmp),
        "core": profile_core(spec, messages, len(data)),
    }


def faust_floor(bootstrap: str, n: int) -> float:
    """Messages/s of a Faust agent that only counts single-event messages (bench/floor.py)."""
    topic = f"floor-{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topic(bootstrap, topic))
    x, y = rows(1)[0]
    value = orjson.dumps({"event_id": "e", "model": "m", "features": x, "label": y})
    asyncio.run(produce(bootstrap, topic, [value] * n, b"m"))
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "floor.py"), bootstrap, topic, str(n)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    line = next(ln for ln in reversed(out.stdout.splitlines()) if ln.startswith('{"messages"'))
    result = orjson.loads(line)
    return float(result["messages"] / result["seconds"])


def latency_and_http(bootstrap: str, tmp: Path, scale: float) -> dict[str, Any]:
    """The floors first (bench/latency.py says what each one is): the Kafka and the Faust
    echo at 1,000 events/s, then the node's end-to-end latency at 200 and at 1,000 events/s
    (10 s each); the HTTP floor (a FastAPI app alone, idle and with one core burned), then
    HTTP predict on the node idle, idle with one core burned, and while it learns a
    500-event-message backlog flat out; the linear model with the default spec."""
    floor_rate = float(max(RATES))
    floor_n = max(1_000, int(10 * floor_rate * scale))
    node = Node(bootstrap, models_toml(default_spec("lat", MODELS["linear"][0])), tmp / "latency")
    partitions = node.settings.topic_partitions
    floors = {
        f"{kind}_floor_at_1000_per_s": echo_floor(bootstrap, kind, floor_rate, floor_n, partitions)
        for kind in ("kafka", "faust")
    }
    asyncio.run(create_topics(node.settings))
    node.start()
    try:
        e2e = {
            f"end_to_end_at_{rate}_per_s": asyncio.run(
                end_to_end(node, "lat", float(rate), n=max(rate, int(10 * rate * scale)))
            )
            for rate in RATES
        }
        http_floors = http_floor(seconds=3)
        idle = http_predict(node.url, "lat", seconds=3)
        with cpu_hog(seconds=8):
            idle_hog = http_predict(node.url, "lat", seconds=3)
        # The backlog is written first, so that this process only sends requests while the
        # node learns it (a producer in this process would slow the client down, not the node).
        backlog = event_messages("lat", rows(int(300_000 * scale)), BATCH)
        backlog = [v.replace(b'"lat-', b'"bulk-') for v in backlog]
        asyncio.run(produce(bootstrap, node.settings.topic_name("events"), backlog, b"lat"))
        before = node.state("lat")["n_learned"]
        busy = http_predict(node.url, "lat", seconds=3)
        busy["learned_during"] = node.state("lat")["n_learned"] - before
    finally:
        node.stop()
    return {
        **floors,
        **e2e,
        "http_floor_idle": http_floors["idle"],
        "http_floor_one_core_burned": http_floors["one_core_burned"],
        "http_predict_idle": idle,
        "http_predict_idle_one_core_burned": idle_hog,
        "http_predict_learning": busy,
    }


def in_process_extras(scale: float) -> dict[str, Any]:
    """Memory per model and per pending prediction; the cost of challengers."""
    pipeline = MODELS["linear"][0]
    data = rows(max(2_000, int(20_000 * scale)))
    return {
        "memory": memory(pipeline),
        "challengers": challenger_cost(pipeline, event_messages("m", data, BATCH), len(data)),
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the events")
    parser.add_argument(
        "--part",
        choices=["all", "throughput", "profile", "latency"],
        default="all",
        help="run only the throughput tables, only the profile, or only the"
        " latency/HTTP/memory part",
    )
    return parser.parse_args()


def measure(part: str, scale: float, tmp: Path) -> dict[str, Any]:
    """Every measurement of ``part``, on a broker started for the run."""
    kafka = broker(tmp)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    try:
        if part in ("all", "throughput"):
            floor = faust_floor(kafka.bootstrap, int(40_000 * scale))
            results["faust_floor_msgs_per_s"] = floor
            results.update(throughput(kafka.bootstrap, floor, scale, tmp))
            print_tables(results)
        if part in ("all", "profile"):
            results["profile"] = profile(kafka.bootstrap, scale, tmp, results)
            print_profile(results["profile"])
        if part in ("all", "latency"):
            results.update(latency_and_http(kafka.bootstrap, tmp, scale))
            results.update(in_process_extras(scale))
            print_summary(results)
    finally:
        kafka.stop()
    return results


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="streamlearn-bench-"))
    results = measure(args.part, 0.1 if args.quick else 1.0, tmp)
    results["goals"] = check_goals(results)
    RESULTS.mkdir(exist_ok=True)
    name = "latest.json" if args.part == "all" and not args.quick else f"{args.part}.json"
    (RESULTS / name).write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print_goals(results["goals"])


if __name__ == "__main__":
    main()
