"""streamlearn's cost next to its two limits, measured side by side in one run.

    .venv/bin/python bench/run.py            # about 4 minutes on 2 cores
    .venv/bin/python bench/run.py --quick    # smaller streams, for a smoke run

For each model it measures, on River's Agrawal stream:
  raw      the raw River loop in this process (predict, metric, learn; no I/O)
  single   a streamlearn node learning a backlog of one-event Kafka messages
  batched  the same node learning a backlog of 500-event messages
and, once: the Faust floor (an agent that only counts messages, same broker), the
end-to-end latency at a fixed rate, HTTP predict latency while learning flat out and idle,
and memory per model and per pending prediction. Figures go to bench/results/latest.json.

The benchmarks start a local plaintext broker of their own, unless the environment names a
secured one (STREAMLEARN_KAFKA_SECURITY_PROTOCOL other than PLAINTEXT, with its
STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS and the other STREAMLEARN_KAFKA_* settings): every
client and node then uses that broker with those settings. Its ACLs must let the user
create, read and write topics and groups prefixed "b" (the nodes) and "floor-" (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from river import datasets, metrics

from streams.broker.local import LocalKafka
from streams.credentials import ClientOptions, client_options
from streams.learning.model import Limits
from streams.learning.pipeline import parse_estimator
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec
from streams.settings import Settings
from streams.topics import create_topics

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
MODELS = {
    "linear": ("preprocessing.StandardScaler() | linear_model.LogisticRegression()", 40_000),
    "hoeffding": ("tree.HoeffdingTreeClassifier()", 20_000),
    "arf": ("forest.ARFClassifier(seed=1, n_models=5)", 4_000),
}
BATCH = 500


def rows(n: int) -> list[tuple[dict[str, Any], int]]:
    return list(itertools.islice(datasets.synth.Agrawal(seed=42), n))


def raw_loop(pipeline: str, data: list[tuple[dict[str, Any], int]]) -> float:
    """Events/s of River alone: predict_proba_one, Accuracy, learn_one."""
    model, metric = parse_estimator(pipeline), metrics.Accuracy()
    started = time.perf_counter()
    for x, y in data:
        proba = model.predict_proba_one(x)
        if proba:
            metric.update(y, max(proba, key=proba.get))
        model.learn_one(x, y)
    return len(data) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kafka_options() -> ClientOptions:
    """Security options of every client here, from the environment's STREAMLEARN_KAFKA_*
    settings (none with the local plaintext broker)."""
    return client_options(Settings())


async def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, **kafka_options()
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, v, key=key) for v in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def prediction_times(settings: Settings) -> list[float]:
    """The ``ts`` of every prediction on the predictions topic, in epoch seconds."""
    consumer = AIOKafkaConsumer(
        settings.topic_name("predictions"),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings),
    )
    await consumer.start()
    stamps: list[float] = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            if not batches:
                break
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value)
                    for p in value if isinstance(value, list) else [value]:
                        stamps.append(datetime.fromisoformat(p["ts"]).timestamp())
    finally:
        await consumer.stop()
    return stamps


def event_messages(model: str, data: list[tuple[dict[str, Any], int]], batch: int) -> list[bytes]:
    events = [
        {"event_id": f"{model}-{i}", "model": model, "features": x, "label": y}
        for i, (x, y) in enumerate(data)
    ]
    if batch == 1:
        return [orjson.dumps(e) for e in events]
    return [orjson.dumps(events[i : i + batch]) for i in range(0, len(events), batch)]


class Node:
    """A ``streamlearn worker`` on its own topics."""

    def __init__(
        self, bootstrap: str, models_toml: str, workdir: Path, prefix: str | None = None
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        #: Nodes given the same prefix share topics and app id: one consumer group.
        self.prefix = prefix or f"b{uuid.uuid4().hex[:8]}."
        self.port = free_port()
        (workdir / "models.toml").write_text(models_toml)
        self.settings = Settings(
            kafka_bootstrap_servers=bootstrap, topic_prefix=self.prefix, app_id=self.prefix
        )
        self.env = {
            **os.environ,
            "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMLEARN_TOPIC_PREFIX": self.prefix,
            "STREAMLEARN_APP_ID": self.prefix,
            "STREAMLEARN_MODELS": str(workdir / "models.toml"),
            "STREAMLEARN_STATE_DIR": str(workdir / "state"),
            "STREAMLEARN_HTTP_PORT": str(self.port),
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "worker", "--loglevel", "warning"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"node not ready; see {self.workdir / 'worker.log'}")

    def state(self, model: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/models/{model}", timeout=10).json())

    def learn_rate(self, model: str, n: int) -> float:
        """Wait until ``n`` are learned; events/s from the node's own prediction timestamps
        (first to last prediction published)."""
        while int(self.state(model)["n_learned"]) < n:
            time.sleep(0.05)
        # Events of one input message share its stamp (when it was taken up): between the
        # first and the last stamp, all events but those of the last message were learned.
        stamps = sorted(asyncio.run(prediction_times(self.settings)))
        first, last = stamps[0], stamps[-1]
        return (n - stamps.count(last)) / (last - first)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)


def node_throughput(
    bootstrap: str, name: str, pipeline: str, data: Any, batch: int, tmp: Path
) -> float:
    toml = (
        f'[models.{name}]\ntask = "binary"\npipeline = "{pipeline}"\npreprocess = "none"\n'
        f'metrics = ["Accuracy"]\nsnapshot_every = 100000000\n'
    )
    node = Node(bootstrap, toml, tmp / f"{name}-{batch}")
    asyncio.run(create_topics(node.settings))
    asyncio.run(
        produce(
            bootstrap,
            node.settings.topic_name("events"),
            event_messages(name, data, batch),
            name.encode(),
        )
    )
    node.start()
    try:
        return node.learn_rate(name, len(data))
    finally:
        node.stop()


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


def faust_floor(bootstrap: str, n: int) -> float:
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


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


async def end_to_end(node: Node, name: str, rate: float, n: int) -> dict[str, float]:
    """Produce single-event messages at ``rate``; latency until each prediction is readable."""
    bootstrap = node.settings.kafka_bootstrap_servers
    consumer = AIOKafkaConsumer(
        node.settings.topic_name("predictions"),
        bootstrap_servers=bootstrap,
        auto_offset_reset="latest",
        **client_options(node.settings),
    )
    await consumer.start()
    await consumer.seek_to_end()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", **client_options(node.settings)
    )
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    data = rows(n)

    async def send() -> None:
        started = time.perf_counter()
        for i, (x, y) in enumerate(data):
            event_id = f"lat-{i}"
            sent[event_id] = time.perf_counter()
            value = orjson.dumps({"event_id": event_id, "model": name, "features": x, "label": y})
            await producer.send(node.settings.topic_name("events"), value, key=name.encode())
            delay = (i + 1) / rate - (time.perf_counter() - started)
            if delay > 0:
                await asyncio.sleep(delay)

    sender = asyncio.create_task(send())
    while len(latencies) < n:
        batches = await consumer.getmany(timeout_ms=200)
        now = time.perf_counter()
        for records in batches.values():
            for record in records:
                value = orjson.loads(record.value)
                for p in value if isinstance(value, list) else [value]:
                    if p["event_id"] in sent:
                        latencies.append(now - sent[p["event_id"]])
    await sender
    await producer.stop()
    await consumer.stop()
    return percentiles(latencies)


def http_predict(url: str, name: str, seconds: float) -> dict[str, float]:
    x = rows(1)[0][0]
    samples: list[float] = []
    with httpx.Client(base_url=url, timeout=10) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            client.post(f"/models/{name}/predict", json={"features": x}).raise_for_status()
            samples.append(time.perf_counter() - started)
    return {**percentiles(samples), "requests_per_s": len(samples) / seconds}


def memory() -> dict[str, float]:
    spec = ModelSpec(name="m", task="binary", pipeline=MODELS["linear"][0], preprocess="none")
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


def challenger_cost(scale: float) -> dict[str, Any]:
    """Learning-core events/s with k challengers (copies of the linear pipeline with other l2),
    and the ratio to k = 0. In process: the cost the node adds per event is the same."""
    data = rows(max(2_000, int(20_000 * scale)))
    messages = event_messages("m", data, BATCH)
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
            pipeline=MODELS["linear"][0],
            preprocess="none",
            metrics=("Accuracy",),
            search=search,
        )
        registry = ModelRegistry({"m": spec}, Limits(), max_event_bytes=10**7)
        started = time.perf_counter()
        for i, value in enumerate(messages):
            registry.handle_events(value, topic="e", partition=0, offset=i, now=0.0)
        out[f"k{k}_per_s"] = len(data) / (time.perf_counter() - started)
    for k in (1, 3):
        out[f"k{k}_over_k0"] = out[f"k{k}_per_s"] / out["k0_per_s"]
    return out


class EnvironmentKafka:
    """The secured broker the environment names: used as it is, never started or stopped."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def stop(self) -> bool:
        return False


def broker(tmp: Path) -> LocalKafka | EnvironmentKafka:
    """A local plaintext broker started for the run, or the environment's secured one."""
    settings = Settings()
    if settings.kafka_security_protocol != "PLAINTEXT":
        return EnvironmentKafka(settings.kafka_bootstrap_servers)
    port = free_port()
    while True:  # the controller listens on port + 1
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            port = free_port()
    kafka = LocalKafka(tmp / "kafka", "127.0.0.1", port, version=Settings().kafka_version)
    kafka.start()
    return kafka


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the events")
    parser.add_argument(
        "--part",
        choices=["all", "throughput", "latency"],
        default="all",
        help="run only the throughput table or only the latency/HTTP/memory part",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    scale = 0.1 if args.quick else 1.0
    tmp = Path(tempfile.mkdtemp(prefix="streamlearn-bench-"))
    kafka = broker(tmp)
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "models": {}}
    try:
        floor = faust_floor(kafka.bootstrap, int(40_000 * scale))
        results["faust_floor_msgs_per_s"] = floor
        for name, (pipeline, n) in MODELS.items() if args.part != "latency" else ():
            data = rows(max(4 * BATCH, int(n * scale)))
            raw = raw_loop(pipeline, data)
            single = node_throughput(kafka.bootstrap, name, pipeline, data, 1, tmp)
            batched = node_throughput(kafka.bootstrap, name, pipeline, data, BATCH, tmp)
            ceiling = 1 / (1 / floor + 1 / raw)
            results["models"][name] = {
                "pipeline": pipeline,
                "events": len(data),
                "raw_per_s": raw,
                "single_per_s": single,
                "batched_per_s": batched,
                "ceiling_per_s": ceiling,
                "single_over_ceiling": single / ceiling,
                "batched_over_raw": batched / raw,
            }
            print_row(name, results["models"][name], floor)
        if args.part != "throughput":
            results.update(latency_and_http(kafka.bootstrap, tmp, scale))
            results["memory"] = memory()
            results["challengers"] = challenger_cost(scale)
    finally:
        kafka.stop()
    RESULTS.mkdir(exist_ok=True)
    name = "latest.json" if args.part == "all" and not args.quick else f"{args.part}.json"
    (RESULTS / name).write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    if args.part != "throughput":
        print_summary(results)


def latency_and_http(bootstrap: str, tmp: Path, scale: float) -> dict[str, Any]:
    pipeline = MODELS["linear"][0]
    toml = f'[models.lat]\ntask = "binary"\npipeline = "{pipeline}"\npreprocess = "none"\n'
    node = Node(bootstrap, toml, tmp / "latency")
    asyncio.run(create_topics(node.settings))
    node.start()
    try:
        e2e = asyncio.run(end_to_end(node, "lat", rate=200.0, n=max(200, int(2_000 * scale))))
        idle = http_predict(node.url, "lat", seconds=3)
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
        "end_to_end_at_200_per_s": e2e,
        "http_predict_idle": idle,
        "http_predict_learning": busy,
    }


def print_row(name: str, r: dict[str, Any], floor: float) -> None:
    sys.stdout.write(
        f"{name:10s} raw {r['raw_per_s']:>9,.0f}/s  floor {floor:>8,.0f}/s  "
        f"single {r['single_per_s']:>8,.0f}/s  batched {r['batched_per_s']:>9,.0f}/s  "
        f"single/ceiling {r['single_over_ceiling']:.2f}  batched/raw {r['batched_over_raw']:.2f}\n"
    )
    sys.stdout.flush()


def print_summary(results: dict[str, Any]) -> None:
    e2e, idle, busy = (
        results["end_to_end_at_200_per_s"],
        results["http_predict_idle"],
        results["http_predict_learning"],
    )
    mem = results["memory"]
    cost = results["challengers"]
    sys.stdout.write(
        f"end-to-end latency at 200 ev/s (single events): p50 {e2e['p50_ms']:.1f} ms, "
        f"p99 {e2e['p99_ms']:.1f} ms\n"
        f"HTTP predict idle:     p50 {idle['p50_ms']:.2f} ms  p99 {idle['p99_ms']:.2f} ms  "
        f"{idle['requests_per_s']:.0f} req/s\n"
        f"HTTP predict learning: p50 {busy['p50_ms']:.2f} ms  p99 {busy['p99_ms']:.2f} ms  "
        f"{busy['requests_per_s']:.0f} req/s\n"
        f"memory: {mem['bytes_per_model_after_200_events'] / 1024:.1f} KiB per model, "
        f"{mem['bytes_per_pending_prediction']:.0f} B per pending prediction\n"
        f"challengers (learning core, linear): k=1 {cost['k1_over_k0']:.2f}x, "
        f"k=3 {cost['k3_over_k0']:.2f}x the throughput of k=0 ({cost['k0_per_s']:,.0f}/s)\n"
        f"written to {RESULTS}/\n"
    )


if __name__ == "__main__":
    main()
