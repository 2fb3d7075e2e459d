"""Start and stop the local broker many times, each on fresh storage, and count the failures.

    .venv/bin/python bench/broker_cycles.py              # 200 cycles, several s each
    .venv/bin/python bench/broker_cycles.py --cycles 20  # a smoke run
    .venv/bin/python bench/broker_cycles.py --max-minutes 40  # as many of 200 as fit

Each cycle runs ``streamlearn kafka start`` then ``streamlearn kafka stop`` as the user
would, in subprocesses, with its own empty ``STREAMLEARN_STATE_DIR`` and a free port pair
(the controller listens on port + 1). An empty state directory means every start fetches the
jars into it (from the Maven cache) and formats the KRaft storage with a new cluster id:
that format step is where a random id beginning with ``-`` used to fail one start in 64.
A failure is a non-zero exit of either command, or a port still open after the stop; it is
printed with its output as it happens and its state directory is kept. Figures go to
bench/results/broker_cycles.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: Generous: a start itself gives up after 90 s, a stop after 30 s.
STEP_TIMEOUT_SECONDS = 300.0


def free_port_pair() -> int:
    """A free TCP port on loopback whose next port is free too (as the test suite picks)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def streamlearn(action: str, env: dict[str, str]) -> tuple[int, str, float]:
    """Run ``streamlearn kafka <action>``: its exit code, output and duration."""
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "streams.cli", "kafka", action],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS,
            check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        output = f"timed out after {STEP_TIMEOUT_SECONDS:.0f} s: {exc.stdout!r} {exc.stderr!r}"
        return -1, output, time.perf_counter() - started
    return result.returncode, (result.stdout + result.stderr).strip(), time.perf_counter() - started


def cycle(root: Path, number: int) -> dict[str, Any]:
    """One start and stop on fresh storage; the failure, if any, under ``error``."""
    state = root / f"cycle-{number:04d}"
    port = free_port_pair()
    env = {
        **os.environ,
        "STREAMLEARN_STATE_DIR": str(state),
        "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
    }
    outcome: dict[str, Any] = {"cycle": number, "port": port, "error": None}
    code, output, outcome["start_s"] = streamlearn("start", env)
    if code != 0:
        outcome["error"] = f"start exited {code}: {output}"
    # Stop even after a failed start: a broker half started must not outlive its cycle.
    code, stop_output, outcome["stop_s"] = streamlearn("stop", env)
    if outcome["error"] is None and (code != 0 or stop_output != "stopped"):
        outcome["error"] = f"stop exited {code}: {stop_output}"
    if outcome["error"] is None and port_open(port):
        outcome["error"] = f"port {port} still answers after the stop"
    if outcome["error"] is None:
        shutil.rmtree(state, ignore_errors=True)  # the jars alone are tens of MB
    else:
        outcome["state_dir"] = str(state)
    return outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=200, help="start/stop cycles (200)")
    parser.add_argument(
        "--max-minutes", type=float, default=None,
        help="start no new cycle after this long (default: no limit)",
    )  # fmt: skip
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="broker-cycles-"))
    outcomes = []
    started = time.perf_counter()
    budget = args.max_minutes * 60 if args.max_minutes else float("inf")
    for number in range(1, args.cycles + 1):
        if time.perf_counter() - started > budget:
            break
        outcome = cycle(root, number)
        outcomes.append(outcome)
        if outcome["error"]:
            print(f"cycle {number} failed: {outcome['error']}", flush=True)
    elapsed = time.perf_counter() - started
    failures = [o for o in outcomes if o["error"]]
    per_cycle = elapsed / len(outcomes)
    start_median = statistics.median(o["start_s"] for o in outcomes)
    stop_median = statistics.median(o["stop_s"] for o in outcomes)
    results = {
        "cycles": len(outcomes),
        "cycles_asked": args.cycles,
        "failed": len(failures),
        "seconds_per_cycle": per_cycle,
        "start_s_median": start_median,
        "stop_s_median": stop_median,
        "total_s": elapsed,
        "failures": failures,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "broker_cycles.json").write_text(
        orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n"
    )
    if not failures:
        shutil.rmtree(root, ignore_errors=True)
    print(f"cycles: {len(outcomes)}, failed: {len(failures)}, seconds per cycle: {per_cycle:.1f}")
    print(f"  start median {start_median:.1f} s, stop median {stop_median:.1f} s")
    if len(outcomes) < args.cycles:
        print(f"  stopped at the {args.max_minutes:g} min budget: {len(outcomes)} of {args.cycles}")
    if failures:
        print(f"  the failed cycles' state directories are kept under {root}")


if __name__ == "__main__":
    main()
