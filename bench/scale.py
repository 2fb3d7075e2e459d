"""Many models on one node and on two nodes of one group, measured side by side in one run.

    .venv/bin/python bench/scale.py            # about 2 minutes on 2 cores
    .venv/bin/python bench/scale.py --quick    # smaller streams, for a smoke run

Twelve Hoeffding-tree models with the default binary spec (six metrics, preprocess "auto",
a snapshot every 10,000 events), one per partition of twelve, each with its own Agrawal
stream in 100-event messages. For the raw River loop (all models, one after another, in this
process, on the estimators and cumulative metrics of that spec), then one node, then two
nodes in one consumer group: the nodes are started and have joined first, then the backlog is
written as fast as possible, and the rate is all labelled events over the time between the
first and the last prediction published. While they learn, the CPU time of every process
taking part (the broker, each node, this process writing the backlog) is read from /proc:
with two cores, two nodes cannot double one when the others already take a share of them.
Then, with the models learned, how long until every model is live again when a third node
joins, leaves cleanly, and is killed -9 (the last is bound by
STREAMLEARN_SESSION_TIMEOUT_SECONDS). Figures go to bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from harness import models_toml
from in_process import default_spec, river_loop
from river import datasets
from run import RESULTS, Node, broker, event_messages, prediction_times, produce

from streams.learning.partitioning import partition_for
from streams.settings import Settings
from streams.topics import create_topics

PIPELINE = "tree.HoeffdingTreeClassifier()"
PARTITIONS = Settings().topic_partitions  # the default the nodes use
BATCH = 100


def model_names() -> list[str]:
    """One name per partition, so that each node of two holds half of the work."""
    names: dict[int, str] = {}
    for i in itertools.count():
        names.setdefault(partition_for(f"model{i}", PARTITIONS), f"model{i}")
        if len(names) == PARTITIONS:
            return [names[p] for p in range(PARTITIONS)]
    raise AssertionError("unreachable")


def streams(names: list[str], n: int) -> dict[str, list[tuple[dict[str, Any], int]]]:
    return {
        name: list(itertools.islice(datasets.synth.Agrawal(seed=i + 1), n))
        for i, name in enumerate(names)
    }


def group(bootstrap: str, names: list[str], nodes: int, tmp: Path) -> list[Node]:
    toml = models_toml(*(default_spec(name, PIPELINE) for name in names))
    first = Node(bootstrap, toml, tmp / f"n{nodes}-0")
    others = [Node(bootstrap, toml, tmp / f"n{nodes}-{i}", first.prefix) for i in range(1, nodes)]
    return [first, *others]


def joined(members: list[Node]) -> bool:
    """Every member holds some partitions and the group has them all."""
    held = []
    for member in members:
        ready = httpx.get(f"{member.url}/readyz", timeout=5)
        if ready.status_code != 200 or not ready.json()["partitions"]:
            return False
        held += ready.json()["partitions"]
    return len(set(held)) == len(held) == 2 * PARTITIONS  # events and labels


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU seconds process ``pid`` has used (this process when None)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_rate(
    bootstrap: str,
    data: dict[str, Any],
    nodes: int,
    tmp: Path,
    moves: dict[str, float],
    broker_pid: int | None,
    cpu: dict[str, Any],
) -> float:
    names = list(data)
    members = group(bootstrap, names, nodes, tmp)
    settings = members[0].settings
    asyncio.run(create_topics(settings))
    for member in members:
        member.start()
    try:
        deadline = time.monotonic() + 120
        while not joined(members):
            if time.monotonic() > deadline:
                raise RuntimeError("the group did not settle")
            time.sleep(0.2)

        async def backlog() -> None:
            await asyncio.gather(*(
                produce(bootstrap, settings.topic_name("events"),
                        event_messages(name, rows, BATCH), name.encode())
                for name, rows in data.items()
            ))  # fmt: skip

        pids: dict[str, int | None] = {
            f"node {i + 1}": member.process.pid for i, member in enumerate(members)
                if member.process}  # fmt: skip
        pids["this process (the backlog's producer)"] = None
        if broker_pid is not None:
            pids["broker"] = broker_pid
        before = {role: cpu_seconds(pid) for role, pid in pids.items()}
        started = time.monotonic()
        asyncio.run(backlog())
        total = sum(len(rows) for rows in data.values())
        while sum(members[0].state(name)["n_learned"] for name in names) < total:
            time.sleep(0.1)
        wall = time.monotonic() - started
        shares = {role: (cpu_seconds(pid) - before[role]) / wall for role, pid in pids.items()}
        cpu.update(
            cores=os.cpu_count(),
            wall_s=wall,
            share_of_one_core=shares,
            total_of_all_cores=sum(shares.values()) / (os.cpu_count() or 1),
        )
        stamps = sorted(asyncio.run(prediction_times(settings)))
        last_message = BATCH  # the events of the last message share the last stamp
        rate = (total - last_message) / (stamps[-1] - stamps[0])
        if nodes > 1:
            moves.update(handovers(members, names, tmp))
        return rate
    finally:
        for member in members:
            member.stop()


def live_on(members: list[Node], names: list[str]) -> bool:
    """Every model is live on one of ``members``."""
    live: list[str] = []
    for member in members:
        ready = httpx.get(f"{member.url}/readyz", timeout=5)
        if ready.status_code != 200:
            return False
        live += ready.json()["models"]
    return sorted(live) == sorted(names)


def seconds_until(check: Any, timeout: float = 120) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError("timed out")
        time.sleep(0.05)
    return time.monotonic() - started


def handovers(members: list[Node], names: list[str], tmp: Path) -> dict[str, float]:
    """Seconds until every model is live again when a node joins, leaves, or is killed."""
    toml = (members[0].workdir / "models.toml").read_text()
    third = Node(members[0].settings.kafka_bootstrap_servers, toml, tmp / "joiner",
                 members[0].prefix)  # fmt: skip
    started = time.monotonic()
    third.start()
    joined_in = (
        time.monotonic()
        - started
        + seconds_until(lambda: live_on([*members, third], names) and joined([*members, third]))
    )
    assert third.process is not None
    third.process.terminate()  # a clean leave
    started = time.monotonic()
    third.process.wait(timeout=30)
    left_in = time.monotonic() - started + seconds_until(lambda: live_on(members, names))
    third.start()
    seconds_until(lambda: live_on([*members, third], names) and joined([*members, third]))
    third.process.kill()  # kill -9
    started = time.monotonic()
    third.process.wait()
    killed_in = time.monotonic() - started + seconds_until(lambda: live_on(members, names))
    return {"join_s": joined_in, "clean_leave_s": left_in, "kill_9_s": killed_in}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller streams")
    args = parser.parse_args()
    per_model = 2_000 if args.quick else 8_000
    names = model_names()
    data = streams(names, per_model)
    total = per_model * len(names)
    raw_seconds = sum(
        len(rows) / river_loop(default_spec(name, PIPELINE), rows) for name, rows in data.items()
    )
    raw = total / raw_seconds
    cpu: dict[str, dict[str, Any]] = {"one": {}, "two": {}}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        kafka = broker(tmp)
        broker_pid = getattr(kafka, "status", lambda: None)()
        pid = getattr(broker_pid, "pid", None)
        try:
            moves: dict[str, float] = {}
            one = node_rate(kafka.bootstrap, data, 1, tmp, moves, pid, cpu["one"])
            two = node_rate(kafka.bootstrap, data, 2, tmp, moves, pid, cpu["two"])
        finally:
            kafka.stop()
    results = {
        "models": len(names), "pipeline": PIPELINE, "events_per_model": per_model,
        "batch": BATCH, "raw_events_per_s": raw, "one_node_events_per_s": one,
        "two_nodes_events_per_s": two, "two_over_one": two / one, "one_over_raw": one / raw,
        "two_over_raw": two / raw, "models_live_again_after": moves, "cpu": cpu,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "scale.json").write_text(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    print(
        f"{len(names)} models x {per_model:,} events, {PIPELINE} with the default spec,"
        f" {BATCH}-event messages"
    )
    print(f"  raw River loop (one process)  {raw:>10,.0f} events/s")
    print(f"  one node                      {one:>10,.0f} events/s   {one / raw:.2f}x raw")
    print(f"  two nodes, one group          {two:>10,.0f} events/s   {two / raw:.2f}x raw")
    print(f"  two nodes / one node          {two / one:.2f}")
    print(
        "  every model live again after a third node joins {join_s:.1f} s, leaves cleanly"
        " {clean_leave_s:.1f} s, is killed -9 {kill_9_s:.1f} s".format(**moves)
    )
    for run, figures in cpu.items():
        print(f"  CPU while {run} node(s) learn, in cores used (of {figures['cores']}):")
        for role, share in figures["share_of_one_core"].items():
            print(f"    {role:40s} {share:5.2f}")
        print(f"    {'all of them, share of the machine':40s} {figures['total_of_all_cores']:5.0%}")


if __name__ == "__main__":
    main()
