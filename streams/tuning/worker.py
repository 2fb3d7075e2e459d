"""The process of one tuning job: ``python -m streams.tuning.worker JOB_DIR NODE_PID``.

Started by the node (:mod:`streams.tuning.jobs`), at the lowest CPU priority, and
killed by the kernel if the node dies. It reads the model's window of history from Kafka once
(kept as ``window.jsonl``, so a resumed job scores on the same events), then runs the study,
which resumes from its journal. SIGTERM stops it after the trial under way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import orjson

from streams.learning.snapshots import die_with
from streams.learning.spec import ModelSpec
from streams.settings import Settings
from streams.tuning.history import read_window
from streams.tuning.progress import read_progress, write_progress
from streams.tuning.study import run

logger = logging.getLogger("streams.tuning")

#: The job's niceness, and its session's: trials yield the CPU to learning and answering.
NICENESS = 19


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job_dir, parent = Path(args[0]), int(args[1])
    die_with(parent)
    yield_cpu()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    request: dict[str, Any] = orjson.loads((job_dir / "request.json").read_bytes())
    window = job_dir / "window.jsonl"
    if not window.exists():
        if not _read_history(job_dir, request):
            return 0
    if stop.is_set():
        _set_state(job_dir, "stopped")
        return 0
    final = run(job_dir, stop)
    logger.info("tuning job %s: %s after %s trials", job_dir.name, final["state"],
                final["n_done"])  # fmt: skip
    return 0


def yield_cpu() -> None:
    """Lower this process's CPU priority, and its session's. Where the kernel shares the CPU
    between sessions first (Linux's autogroups), a process's niceness only ranks it within its
    session, and the node starts each job in a session of its own: measured by
    bench/tuning_load.py, the job then took as much CPU as the node despite its niceness."""
    os.nice(NICENESS)
    try:
        Path("/proc/self/autogroup").write_text(str(NICENESS))
    except OSError:  # no autogroups (another OS, or a kernel without them)
        pass
    try:  # Linux: runs only on a CPU nothing else wants, and is preempted at once
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def _read_history(job_dir: Path, request: dict[str, Any]) -> bool:
    """Write the window; ``False`` (the job failed) when the partitions hold too little."""
    spec = ModelSpec(**request["spec"])
    history = asyncio.run(read_window(Settings(), spec, int(request["window"])))
    asked, found = int(request["window"]), len(history.events)
    if found < asked:
        _set_state(job_dir, "failed", error=(
            f"window: the partitions of model {spec.name!r} hold {found} labelled events"
            f" ({history.n_labelled} learned, {history.n_skipped} refused or repeated), fewer"
            f" than the {asked} asked; retention may have removed older records"
        ), n_window=found)  # fmt: skip
        return False
    temporary = job_dir / "window.tmp"
    with open(temporary, "wb") as handle:
        for item in history.events:
            handle.write(orjson.dumps(list(item)) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, job_dir / "window.jsonl")
    logger.info("tuning job %s: window of %d events read", job_dir.name, found)
    return True


def _set_state(job_dir: Path, state: str, **fields: Any) -> None:
    progress = read_progress(job_dir) or {}
    write_progress(job_dir, {**progress, **fields, "state": state})


if __name__ == "__main__":
    sys.exit(main())
