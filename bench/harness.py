"""What the benchmarks share: the broker, the data, producing and reading topics, a node.

Imported by ``bench/run.py`` (which re-exports what the other benchmarks import from it).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from river import datasets

from streams.broker.local import LocalKafka
from streams.credentials import ClientOptions, client_options
from streams.learning.spec import ModelSpec
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: The command of a plain node: the ``streamlearn worker`` entry point.
WORKER = ("-m", "streams.cli", "worker", "--loglevel", "warning")


def rows(n: int) -> list[tuple[dict[str, Any], int]]:
    """The first ``n`` events of River's Agrawal stream (seed 42)."""
    return list(itertools.islice(datasets.synth.Agrawal(seed=42), n))


def event_messages(model: str, data: list[tuple[dict[str, Any], int]], batch: int) -> list[bytes]:
    """The values of the events topic for ``data``: one event per message, or arrays of
    ``batch``."""
    events = [
        {"event_id": f"{model}-{i}", "model": model, "features": x, "label": y}
        for i, (x, y) in enumerate(data)
    ]
    if batch == 1:
        return [orjson.dumps(e) for e in events]
    return [orjson.dumps(events[i : i + batch]) for i in range(0, len(events), batch)]


def models_toml(*specs: ModelSpec) -> str:
    """The models file declaring ``specs``, with only the fields each spec sets (the others
    keep the defaults a user gets)."""
    tables = []
    for spec in specs:
        fields = spec.model_dump(exclude_unset=True, exclude={"name"})
        lines = [f"{key} = {_toml_value(value)}" for key, value in fields.items()]
        tables.append(f"[models.{spec.name}]\n" + "\n".join(lines) + "\n")
    return "\n".join(tables)


def _toml_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return orjson.dumps(value).decode()  # a JSON string is a TOML basic string
    return str(value)


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


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * ordered[len(ordered) // 2],
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
    }


class Node:
    """A ``streamlearn worker`` on its own topics.

    ``command`` is what follows the interpreter on its command line: the worker entry point
    unless told otherwise (``bench/profiled_worker.py`` runs the same worker under cProfile).
    """

    def __init__(
        self,
        bootstrap: str,
        models_toml: str,
        workdir: Path,
        prefix: str | None = None,
        command: tuple[str, ...] = WORKER,
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
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.workdir / "worker.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, *self.command],
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

    def wait_learned(self, model: str, n: int, poll: float = 0.05) -> None:
        """Return once ``model`` has learned ``n`` events."""
        while int(self.state(model)["n_learned"]) < n:
            time.sleep(poll)

    def learn_rate(self, model: str, n: int) -> float:
        """Wait until ``n`` are learned; events/s from the node's own prediction timestamps
        (first to last prediction published)."""
        self.wait_learned(model, n)
        # Events of one input message share its stamp (when it was taken up): between the
        # first and the last stamp, all events but those of the last message were learned.
        stamps = sorted(asyncio.run(prediction_times(self.settings)))
        first, last = stamps[0], stamps[-1]
        return (n - stamps.count(last)) / (last - first)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the worker process."""
        if self.process:
            self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)


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
