"""What an event on another partition than its model's costs, next to one on the right one.

    .venv/bin/python bench/reroute.py            # about 2 minutes on 2 cores
    .venv/bin/python bench/reroute.py --quick    # smaller streams, for a smoke run

Side by side in one run, on River's Agrawal stream, for ``StandardScaler | LogisticRegression``
with the default spec of a binary model otherwise (default metrics, snapshots every 10,000):
  core     the learning core alone (``ModelRegistry.handle_events``): messages on the model's
           partition, against messages on another one whose copies are then handled on it
  node     a streamlearn node learning a backlog, 500-event and one-event messages, from the
           moment it is ready until all are learned: keyed with murmur2 (the right
           partition), against all written to another partition (every event moved once:
           written again by the node, then learned); best of two runs each
The cost of a move per event is ``1/moved - 1/right``. Figures go to
bench/results/reroute.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from run import MODELS, RESULTS, Node, broker, event_messages, rows

from streams.learning.model import Limits
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec
from streams.topics import create_topics

PIPELINE = MODELS["linear"][0]
NAME = "linear"


def spec() -> ModelSpec:
    return ModelSpec(name=NAME, task="binary", pipeline=PIPELINE, preprocess="none")


def core(messages: list[bytes], n: int, partitions: int) -> dict[str, float]:
    """Events/s of the learning core: on the right partition, and moved from another one."""
    out: dict[str, float] = {}
    for placed in ("right", "moved"):
        registry = ModelRegistry({NAME: spec()}, Limits(), max_event_bytes=10**7,
                                 partitions=partitions)  # fmt: skip
        right = registry.partition_of(NAME)
        arrival = right if placed == "right" else (right + 1) % partitions
        started = time.perf_counter()
        for i, value in enumerate(messages):
            outcome = registry.handle_events(value, topic="e", partition=arrival, offset=i,
                                             now=0.0)  # fmt: skip
            for j, copy in enumerate(outcome.reroutes):
                registry.handle_events(copy.value, topic="e", partition=copy.partition,
                                       offset=i + j, now=0.0, rerouted=True)  # fmt: skip
        out[placed] = n / (time.perf_counter() - started)
        assert registry.get(NAME).n_learned == n
    return out


async def produce(bootstrap: str, topic: str, values: list[bytes], partition: int | None) -> None:
    """Write ``values`` keyed by the model name, to ``partition`` or where murmur2 puts them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, v, key=NAME.encode(), partition=partition)
                for v in values]  # fmt: skip
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def node_rate(bootstrap: str, messages: list[bytes], n: int, moved: bool, workdir: Path) -> float:
    """Events/s of a node learning a backlog: from the moment it is ready until all ``n`` are
    learned, so that the moves (which publish no prediction) are inside the time measured."""
    toml = f'[models.{NAME}]\ntask = "binary"\npipeline = "{PIPELINE}"\npreprocess = "none"\n'
    node = Node(bootstrap, toml, workdir)
    asyncio.run(create_topics(node.settings))
    partitions = node.settings.topic_partitions
    registry = ModelRegistry({NAME: spec()}, Limits(), max_event_bytes=1, partitions=partitions)
    right = registry.partition_of(NAME)
    partition = (right + 1) % partitions if moved else None
    asyncio.run(produce(bootstrap, node.settings.topic_name("events"), messages, partition))
    node.start()
    started = time.perf_counter()
    try:
        while (state := node.state(NAME))["n_learned"] < n:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        assert state["n_rerouted"] == (n if moved else 0), state["n_rerouted"]
        return n / elapsed
    finally:
        node.stop()


def cost_us(rates: dict[str, float]) -> float:
    """Microseconds a move adds to an event."""
    return 1e6 * (1 / rates["moved"] - 1 / rates["right"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a tenth of the events")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    scale = 0.1 if args.quick else 1.0
    tmp = Path(tempfile.mkdtemp(prefix="streamlearn-reroute-"))
    kafka = broker(tmp)
    results: dict[str, Any] = {}
    try:
        for label, n, batch in (("batched", int(40_000 * scale), 500),
                                ("single", int(10_000 * scale), 1)):  # fmt: skip
            messages = event_messages(NAME, rows(n), batch)
            # Best of two runs each, alternating, against the noise of a small machine.
            runs: dict[str, list[float]] = {"right": [], "moved": []}
            for attempt in range(2):
                for placed in runs:
                    workdir = tmp / f"{label}-{placed}-{attempt}"
                    runs[placed].append(node_rate(kafka.bootstrap, messages, n,
                                                  placed == "moved", workdir))  # fmt: skip
            rates = {placed: max(values) for placed, values in runs.items()}
            results[f"node_{label}"] = {**rates, "move_cost_us": cost_us(rates)}
        messages = event_messages(NAME, rows(int(40_000 * scale)), 500)
        rates = core(messages, int(40_000 * scale), 12)
        results["core_batched"] = {**rates, "move_cost_us": cost_us(rates)}
    finally:
        kafka.stop()
    print(f"{'':16}{'right (ev/s)':>14}{'moved (ev/s)':>14}{'moved/right':>13}{'µs per move':>13}")
    for row, r in results.items():
        print(f"{row:16}{r['right']:>14,.0f}{r['moved']:>14,.0f}{r['moved'] / r['right']:>13.2f}"
              f"{r['move_cost_us']:>13.1f}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "reroute.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
