"""What a running tuning job costs the node: learning rate and HTTP predict latency with and
without one, measured side by side on one node in one run.

    .venv/bin/python bench/tuning_load.py            # about 4 minutes on 2 cores
    .venv/bin/python bench/tuning_load.py --quick    # smaller backlog, one round of each

One node, two models with the default binary spec (``StandardScaler | LogisticRegression``,
the task's six metrics, preprocess "auto", a snapshot every 10,000 events), on two different
partitions: "tuned", which learns a warm-up of Agrawal events and is then tuned (TPE, budget
200, on its last 5,000 labelled events), and "work", whose learning is measured. Two models,
so that what is measured is the same in every round: "work" learns the same kind of backlog
whether a job runs or not, and the job's history read scans a partition "work" never writes.

Rounds alternate, A (no job) and B (a job running, started before the round and seen
"running" with its trials advancing, stopped with DELETE after it): this machine's speed
moves by a fifth or more from one minute to the next. In each round the node is paused
(SIGSTOP) while the backlog of "work" is written in 500-event messages, so that it learns a
backlog already there, as in bench/run.py; then one client posts ``/models/work/predict``
back to back while the node learns, and the learning rate is the labelled events over the
time between the first and the last prediction of the round published. The CPU time of the
node, the job's process, the broker and this process are read from /proc over the round, and
with them the node's CPU time per event: the same with a job running means the node is slower
only for getting less of the CPU. The autogroup of the node and of
the job is recorded: where the kernel shares the CPU between sessions first (autogroups), the
job's process lowers its session's priority as well as its own (streams/tuning/worker.py).
Figures go to bench/results/tuning_load.json (not written by --quick).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from harness import models_toml
from in_process import default_spec
from latency import http_predict
from run import (
    BATCH,
    MODELS,
    RESULTS,
    Node,
    broker,
    event_messages,
    prediction_times,
    produce,
    rows,
)
from scale import cpu_seconds

from streams.topics import create_topics
from streams.tuning.jobs import job_processes
from streams.tuning.progress import read_progress

PIPELINE = MODELS["linear"][0]
TOKEN = "bench-tuning-token"  # noqa: S105  # a throwaway token of a node the bench starts
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SPACE = {
    "LogisticRegression.l2": {"low": 0.0, "high": 0.01},
    "LogisticRegression.optimizer.lr": {"low": 0.005, "high": 0.5, "log": True},
}
#: Labelled events "tuned" learns before the rounds, and the window its jobs score on.
WARM_UP, WINDOW = 6_000, 5_000
#: A round starts once other processes use less than this many cores (this machine is
#: shared), or after waiting this many seconds.
QUIET_CORES, QUIET_TIMEOUT = 0.15, 30.0
#: The share of a round's expected learning time the predict client runs for: all of its
#: requests are then answered while the node learns.
PREDICT_SHARE = 0.6


def worker_pid(job: str) -> int | None:
    """The process running tuning job ``job``, if any."""
    pids = job_processes(job)
    return pids[0] if pids else None


def machine_cpu_seconds() -> float:
    """CPU seconds every core of the machine has spent busy (not idle nor waiting)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def start_job(node: Node, seed: int) -> tuple[str, int]:
    """Start a job tuning "tuned"; its id and process, once it is running trials."""
    body = {"space": SPACE, "sampler": "tpe", "budget": 200, "seed": seed, "window": WINDOW}
    answer = httpx.post(f"{node.url}/models/tuned/tune", json=body, headers=AUTH, timeout=30)
    answer.raise_for_status()
    job = str(answer.json()["job"])
    seen: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress = httpx.get(f"{node.url}/models/tuned/tune/{job}", timeout=10).json()
        if progress["state"] in ("done", "stopped", "failed"):
            raise RuntimeError(f"tuning job {job} ended before the round: {progress}")
        if progress["state"] == "running":
            seen.append(int(progress["n_done"]))
            if len(set(seen)) >= 2:  # trials finished while we watched: it is advancing
                pid = worker_pid(job)
                if pid is not None:
                    return job, pid
        time.sleep(0.1)
    raise RuntimeError(f"tuning job {job} did not start running trials")


def stop_job(node: Node, job: str) -> dict[str, Any]:
    """Stop ``job`` and wait for its process to end; its last progress."""
    answer = httpx.delete(f"{node.url}/models/tuned/tune/{job}", headers=AUTH, timeout=30)
    answer.raise_for_status()
    deadline = time.monotonic() + 10
    while worker_pid(job) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the process of job {job} did not end")
        time.sleep(0.05)
    return dict(answer.json())


def n_done(node: Node, job: str) -> int:
    """Trials ``job`` has finished, from its progress file (the node may be paused)."""
    progress = read_progress(Path(node.env["STREAMLEARN_STATE_DIR"]) / "tuning" / "tuned" / job)
    return int(progress["n_done"]) if progress else 0


def learn_round(
    node: Node,
    messages: list[bytes],
    n: int,
    predict_s: float,
    pids: dict[str, int | None],
    job: str | None,
) -> dict[str, Any]:
    """The node learns ``messages`` (``n`` labelled events of "work"), written while it is
    paused; predict latency while it learns; the CPU of ``pids`` over the round."""
    bootstrap = node.settings.kafka_bootstrap_servers
    before_n = int(node.state("work")["n_learned"])
    node.signal(signal.SIGSTOP)
    try:
        since = time.time()  # every prediction of earlier rounds was published before this
        asyncio.run(produce(bootstrap, node.settings.topic_name("events"), messages, b"work"))
        done_before = n_done(node, job) if job else 0
        cpu_before = {role: cpu_seconds(pid) for role, pid in pids.items()}
        machine_before = machine_cpu_seconds()
        started = time.monotonic()
    finally:
        node.signal(signal.SIGCONT)
    predict = http_predict(node.url, "work", predict_s)
    predict["learned_during"] = int(node.state("work")["n_learned"]) - before_n
    node.wait_learned("work", before_n + n)
    wall = time.monotonic() - started
    shares = {role: (cpu_seconds(pid) - cpu_before[role]) / wall for role, pid in pids.items()}
    # What else ran on the machine meanwhile (other processes, the kernel): this machine is
    # shared, and a round another job slowed down shows here.
    shares["other"] = (machine_cpu_seconds() - machine_before) / wall - sum(shares.values())
    trials = n_done(node, job) - done_before if job else 0
    stamps = sorted(s for s in asyncio.run(prediction_times(node.settings)) if s >= since)
    first, last = stamps[0], stamps[-1]
    # The events of the last message share its stamp: all but those were learned in between.
    rate = (n - stamps.count(last)) / (last - first)
    return {
        "events_per_s": rate,
        "predict": predict,
        "predict_all_while_learning": predict["learned_during"] < n,
        "wall_s": wall,
        "cpu_share_of_one_core": shares,
        # Unchanged when a job runs: then the node is slower only for getting less CPU.
        "node_cpu_us_per_event": 1e6 * shares["node"] * wall / n,
        "trials_finished": trials,
    }


def autogroups_on() -> bool:
    """Whether the kernel groups processes by session for CPU time (``setsid`` starts a
    group, and a process's niceness then only weighs it against its own group)."""
    flag = Path("/proc/sys/kernel/sched_autogroup_enabled")
    return flag.exists() and flag.read_text().strip() == "1"


def autogroup(pid: int) -> str:
    """``/autogroup-<id> nice <n>`` of process ``pid``, or "" without autogroups."""
    try:
        return Path(f"/proc/{pid}/autogroup").read_text().strip()
    except OSError:
        return ""


def wait_quiet(pids: dict[str, int | None], timeout: float = QUIET_TIMEOUT) -> float:
    """Wait until processes other than ``pids`` use less than :data:`QUIET_CORES` of the
    machine over a second, at most ``timeout`` seconds; the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = machine_cpu_seconds() - sum(cpu_seconds(pid) for pid in pids.values())
        time.sleep(1.0)
        after = machine_cpu_seconds() - sum(cpu_seconds(pid) for pid in pids.values())
        if after - before < QUIET_CORES:
            break
    return time.monotonic() - started


def job_round(
    node: Node, seed: int, messages: list[bytes], n: int, predict_s: float,
    pids: dict[str, int | None],
) -> dict[str, Any]:  # fmt: skip
    """A round B: a job started and seen advancing, the round, the job stopped."""
    job, pid = start_job(node, seed)
    groups = {"node": autogroup(pids["node"] or os.getpid()), "tuning worker": autogroup(pid)}
    try:
        with_job = {**pids, "tuning worker": pid}
        wait_quiet(with_job)
        figures = learn_round(node, messages, n, predict_s, with_job, job)
    except FileNotFoundError as exc:  # /proc/<pid> of the job's process is gone
        progress = read_progress(Path(node.env["STREAMLEARN_STATE_DIR"]) / "tuning" / "tuned" / job)
        raise RuntimeError(f"the process of job {job} ended during the round: {progress}") from exc
    finally:
        stopped = stop_job(node, job)
    figures["job"] = {"id": job, "state_at_stop": stopped["state"],
                      "n_done_at_stop": stopped["n_done"], "autogroups": groups}  # fmt: skip
    return figures


def rounds(node: Node, n: int, kinds: str, broker_pid: int | None) -> list[dict[str, Any]]:
    """The warm-ups, then one round of each of ``kinds`` in turn (see the module's text)."""
    data = event_messages("work", rows(n), BATCH)
    asyncio.run(produce(node.settings.kafka_bootstrap_servers,
                        node.settings.topic_name("events"),
                        event_messages("tuned", rows(WARM_UP), BATCH), b"tuned"))  # fmt: skip
    node.wait_learned("tuned", WARM_UP)
    assert node.process is not None
    pids: dict[str, int | None] = {"node": node.process.pid, "this process": None}
    if broker_pid is not None:
        pids["broker"] = broker_pid
    # "work" learns one backlog unmeasured: its first snapshot, the first requests, and the
    # rate the predict client's duration is set from.
    warm = [v.replace(b'"work-', b'"warm-') for v in data[: max(1, len(data) // 4)]]
    first = learn_round(node, warm, min(n, len(warm) * BATCH), 1.0, pids, None)
    predict_s = PREDICT_SHARE * n / first["events_per_s"]
    out = []
    for i, kind in enumerate(kinds):
        messages = [v.replace(b'"work-', f'"r{i}-'.encode()) for v in data]
        if kind == "A":
            waited = wait_quiet(pids)
            figures = learn_round(node, messages, n, predict_s, pids, None)
        else:
            started = time.monotonic()
            figures = job_round(node, i, messages, n, predict_s, pids)
            waited = time.monotonic() - started
        out.append({"round": i + 1, "kind": kind, "waited_before_s": waited, **figures})
        print_round(out[-1])
    return out


def summary(per_round: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each kind of round, and their ratios to A."""
    kinds = sorted({r["kind"] for r in per_round})

    def median(kind: str, pick: Any) -> float:
        return float(statistics.median(pick(r) for r in per_round if r["kind"] == kind))

    out: dict[str, Any] = {}
    for kind in kinds:
        roles = next(r for r in per_round if r["kind"] == kind)["cpu_share_of_one_core"]
        cpu = {role: median(kind, lambda r, role=role: r["cpu_share_of_one_core"][role])
               for role in roles}  # fmt: skip
        out[kind] = {
            "rounds": sum(r["kind"] == kind for r in per_round),
            "events_per_s": median(kind, lambda r: r["events_per_s"]),
            "predict_p50_ms": median(kind, lambda r: r["predict"]["p50_ms"]),
            "predict_p99_ms": median(kind, lambda r: r["predict"]["p99_ms"]),
            "predict_requests_per_s": median(kind, lambda r: r["predict"]["requests_per_s"]),
            "cpu_share_of_one_core": cpu,
            "node_cpu_us_per_event": median(kind, lambda r: r["node_cpu_us_per_event"]),
            "trials_per_round": median(kind, lambda r: r["trials_finished"]),
        }
    for kind in kinds:
        for figure in ("events_per_s", "predict_p50_ms", "predict_p99_ms"):
            out[kind][f"{figure}_over_a"] = out[kind][figure] / out["A"][figure]
    return out


def print_round(r: dict[str, Any]) -> None:
    cpu = r["cpu_share_of_one_core"]
    worker = f"{cpu['tuning worker']:4.2f}" if "tuning worker" in cpu else "   -"
    print(
        f"  round {r['round']:2d} {r['kind']}  {r['events_per_s']:>7,.0f} events/s"
        f"  predict p50 {r['predict']['p50_ms']:5.2f} p99 {r['predict']['p99_ms']:6.2f} ms"
        f"  cores: node {cpu['node']:4.2f} worker {worker} broker {cpu.get('broker', 0.0):4.2f}"
        f" bench {cpu['this process']:4.2f} other {cpu['other']:4.2f}"
        f" ({r['node_cpu_us_per_event']:3.0f} us/event)  trials {r['trials_finished']:3d}"
        f"{'' if r['predict_all_while_learning'] else '  (predict outlasted learning)'}",
        flush=True,
    )


def print_summary(s: dict[str, Any]) -> None:
    names = {"A": "A no job", "B": "B job running"}
    print("\nmedian of rounds    events/s  x A   predict p50  p99 ms   x A  "
          " cores: node worker other  node us/event  trials/round")  # fmt: skip
    for kind, m in s.items():
        cpu = m["cpu_share_of_one_core"]
        print(
            f"  {names[kind]:17s} {m['events_per_s']:>7,.0f} {m['events_per_s_over_a']:5.2f}"
            f"   {m['predict_p50_ms']:9.2f} {m['predict_p99_ms']:6.2f} "
            f"{m['predict_p99_ms_over_a']:5.2f}        {cpu['node']:4.2f}"
            f"   {cpu.get('tuning worker', 0.0):4.2f}  {cpu['other']:4.2f}"
            f"  {m['node_cpu_us_per_event']:13.0f}  {m['trials_per_round']:12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="smaller backlog, one round each; no results file"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    n, repeats = (20_000, 1) if args.quick else (100_000, 3)
    kinds = "AB" * repeats
    with tempfile.TemporaryDirectory(prefix="streamlearn-bench-") as folder:
        tmp = Path(folder)
        kafka = broker(tmp)
        broker_pid = getattr(getattr(kafka, "status", lambda: None)(), "pid", None)
        toml = models_toml(default_spec("tuned", PIPELINE), default_spec("work", PIPELINE))
        node = Node(kafka.bootstrap, toml, tmp / "node")
        node.env["STREAMLEARN_ADMIN_TOKEN"] = TOKEN
        try:
            asyncio.run(create_topics(node.settings))
            node.start()
            try:
                per_round = rounds(node, n, kinds, broker_pid)
            finally:
                node.stop()
        finally:
            kafka.stop()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count()},
        "pipeline": PIPELINE,
        "models": {
            "tuned": f"learns {WARM_UP:,} events, then is tuned in every round B",
            "work": "learns the measured backlogs",
        },
        "events_per_round": n,
        "batch": BATCH,
        "job": {"space": SPACE, "sampler": "tpe", "budget": 200, "window": WINDOW},
        "autogroups": autogroups_on(),
        "summary": summary(per_round),
        "rounds": per_round,
    }
    print_summary(results["summary"])
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        out = orjson.dumps(results, option=orjson.OPT_INDENT_2).decode()
        (RESULTS / "tuning_load.json").write_text(out)


if __name__ == "__main__":
    main()
