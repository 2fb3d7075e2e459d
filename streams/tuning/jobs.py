"""The tuning jobs of a node: each runs in its own process, outside the node's event loop,
and is watched from here.

A job lives in ``<state dir>/tuning/<model>/<job>/``: its request, its window of history, the
Optuna journal and its progress (see :mod:`streams.tuning.study`). The node starts the job's
process (:mod:`streams.tuning.worker`), and every :data:`WATCH_SECONDS` looks at it:

- a process that ended with its job finished (``done``, ``failed``, ``stopped``) is done
  with; a ``done`` job then hands its best configurations to the model's race, once, when the
  model's spec asks for them (``challengers_from_tuning``);
- a process that died before (a kill -9, the machine short of memory) is started again, and
  the study resumes where its journal stopped; after :data:`MAX_DEATHS` deaths in a row the
  job is ``failed``, with the log to read;
- a node that starts finds the jobs it had left unfinished (it was killed, or stopped) and
  starts them again.

A job's process is killed with the node (Linux), so a job never runs without its node.
One job at a time per model, and at most :data:`MAX_RUNNING` per node (each is a process,
with its window in memory); a model keeps its last :data:`KEEP_JOBS` jobs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import orjson

from streams.learning.errors import JobConflict, ModelUnavailable, NodeBusy, UnknownJob
from streams.tuning.progress import (
    FINAL_STATES,
    initial_progress,
    now,
    read_progress,
    write_progress,
)

logger = logging.getLogger(__name__)

#: What a job's process runs (``python -m``).
WORKER_MODULE = "streams.tuning.worker"
#: How often the node looks at its jobs' processes.
WATCH_SECONDS = 0.5
#: Deaths in a row after which a job is given up.
MAX_DEATHS = 3
#: Jobs a node runs at once, over all its models (each is a process of its own).
MAX_RUNNING = 2
#: Jobs kept per model (the oldest finished ones are removed).
KEEP_JOBS = 20
#: How long a done job's configurations wait for the model to have an owner again.
HAND_OVER_SECONDS = 60.0
#: How long a stopped job's process has to end before it is killed.
STOP_SECONDS = 3.0
#: States of a job that has finished; any other is running (or about to run again).
FINISHED = FINAL_STATES

#: Called with the model, the job and its final progress when a job is done; returns what
#: became of its best configurations (kept in the progress as ``challengers``).
OnDone = Callable[[str, str, dict[str, Any]], Awaitable[dict[str, Any]]]


class TuningJobs:
    """Start, follow, stop and resume the tuning jobs under ``directory``."""

    def __init__(self, directory: Path, on_done: OnDone | None = None) -> None:
        self.directory = directory
        self.on_done = on_done
        self._processes: dict[tuple[str, str], subprocess.Popen[bytes]] = {}
        self._deaths: dict[tuple[str, str], int] = {}
        self._stopping: set[tuple[str, str]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- the routes' side -------------------------------------------------------------

    def start(self, model: str, request: dict[str, Any]) -> dict[str, Any]:
        """Start a job for ``model`` from its ``request.json`` (without ``job``); its first
        progress. Raises :class:`JobConflict` when the model has one running."""
        running = self.running(model)
        if running is not None:
            raise JobConflict(model, running)
        busy = self.unfinished()
        if len(busy) >= MAX_RUNNING:
            raise NodeBusy(model, [f"{m}/{j}" for m, j in busy])
        self._forget_old(model)
        job = secrets.token_hex(6)
        job_dir = self.directory / model / job
        job_dir.mkdir(parents=True)
        description = {**request, "job": job}
        _write_json(job_dir / "request.json", description)
        progress = initial_progress(description)
        write_progress(job_dir, progress)
        self._spawn(model, job)
        return progress

    def running(self, model: str) -> str | None:
        """The id of ``model``'s unfinished job, if any."""
        for job_dir in self._job_dirs(model):
            progress = read_progress(job_dir)
            if progress is not None and progress.get("state") not in FINISHED:
                return job_dir.name
        return None

    def unfinished(self) -> list[tuple[str, str]]:
        """Every unfinished job of this node, as ``(model, job)``."""
        out = []
        for model_dir in sorted(self.directory.glob("*")):
            for job_dir in self._job_dirs(model_dir.name):
                progress = read_progress(job_dir)
                if progress is not None and progress.get("state") not in FINISHED:
                    out.append((model_dir.name, job_dir.name))
        return out

    def get(self, model: str, job: str) -> dict[str, Any]:
        """The progress of one job; :class:`UnknownJob` when there is none of that id."""
        progress = read_progress(self._dir(model, job))
        if progress is None:
            raise UnknownJob(model, job)
        return progress

    def summaries(self, model: str) -> list[dict[str, Any]]:
        """Every job of ``model`` kept here, the newest first, without its trials."""
        out = []
        for job_dir in self._job_dirs(model):
            progress = read_progress(job_dir)
            if progress is not None:
                out.append({k: v for k, v in progress.items() if k != "trials"})
        return sorted(out, key=lambda p: str(p.get("started", "")), reverse=True)

    async def stop(self, model: str, job: str) -> dict[str, Any]:
        """Stop a job (its finished trials are kept); a finished job is left as it is."""
        progress = self.get(model, job)
        if progress.get("state") in FINISHED:
            return progress
        key = (model, job)
        self._stopping.add(key)
        (self._dir(model, job) / "stop").touch()
        process = self._processes.get(key)
        if process is not None:
            _signal(process, signal.SIGTERM)
            deadline = asyncio.get_running_loop().time() + STOP_SECONDS
            while process.poll() is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            if process.poll() is None:
                _signal(process, signal.SIGKILL)
                await asyncio.to_thread(process.wait)
            self._processes.pop(key, None)
        self._stopping.discard(key)
        progress = self.get(model, job)
        if progress.get("state") not in FINISHED:
            progress = {**progress, "state": "stopped", "updated": now()}
            write_progress(self._dir(model, job), progress)
        return progress

    # --- the node's side ---------------------------------------------------------------

    def resume(self) -> list[tuple[str, str]]:
        """Start again every unfinished job left here (by a node killed or stopped)."""
        resumed = []
        for key in self.unfinished():
            if key not in self._processes:
                self._spawn(*key)
                resumed.append(key)
        if resumed:
            logger.info("tuning: resumed %d unfinished job(s): %s", len(resumed), resumed)
        return resumed

    async def watch(self) -> None:
        """Follow the jobs' processes until cancelled; at the end, stop them (a job whose
        process is stopped with its node resumes when the node starts again)."""
        try:
            while True:
                await self.check()
                await asyncio.sleep(WATCH_SECONDS)
        finally:
            for process in self._processes.values():
                _signal(process, signal.SIGTERM)

    def start_watching(self) -> None:
        """Resume what was left unfinished and follow it from a task of the running loop."""
        self.resume()
        self._watcher = asyncio.get_running_loop().create_task(self.watch())

    async def stop_watching(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await self.settle()

    async def check(self) -> None:
        """One look at every job's process."""
        for key, process in list(self._processes.items()):
            code = process.poll()
            if code is None or key in self._stopping:
                continue
            del self._processes[key]
            job_dir = self._dir(*key)
            progress = read_progress(job_dir) or {}
            if progress.get("state") in FINISHED:
                self._deaths.pop(key, None)
                if progress.get("state") == "done":
                    self._later(self._hand_over(key, progress))
                continue
            deaths = self._deaths.get(key, 0) + 1
            self._deaths[key] = deaths
            if deaths >= MAX_DEATHS:
                logger.error("tuning job %s/%s died %d times; given up", *key, deaths)
                write_progress(job_dir, {
                    **progress, "state": "failed", "updated": now(),
                    "error": f"the job's process died {deaths} times in a row (last exit code"
                             f" {code}); its log is {job_dir / 'worker.log'}",
                })  # fmt: skip
                continue
            logger.warning("tuning job %s/%s: its process died (exit %s); resuming", *key, code)
            self._spawn(*key)

    async def _hand_over(self, key: tuple[str, str], progress: dict[str, Any]) -> None:
        """A done job's best configurations to the model, once; retried while the model is
        between owners (a rebalance), for up to :data:`HAND_OVER_SECONDS`."""
        if self.on_done is None or "challengers" in progress:
            return
        deadline = asyncio.get_running_loop().time() + HAND_OVER_SECONDS
        while True:
            try:
                outcome = await self.on_done(key[0], key[1], progress)
            except ModelUnavailable as exc:
                if asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(1.0)
                    continue
                outcome = {"state": "failed", "names": [], "detail": str(exc)}
            except Exception as exc:  # the job stays done; what failed is shown with it
                logger.exception("tuning job %s/%s: its challengers could not join", *key)
                outcome = {"state": "failed", "names": [], "detail": f"{type(exc).__name__}: {exc}"}
            break
        write_progress(self._dir(*key), {**progress, "challengers": outcome})

    # --- helpers -------------------------------------------------------------------------

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the watching (kept until it ends)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the hand-overs under way (tests, shutdown)."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, model: str, job: str) -> None:
        job_dir = self._dir(model, job)
        with open(job_dir / "worker.log", "ab") as log:
            self._processes[(model, job)] = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(job_dir), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C at the node's terminal is the node's
            )

    def _dir(self, model: str, job: str) -> Path:
        if "/" in model or "/" in job or job.startswith(".") or model.startswith("."):
            raise UnknownJob(model, job)
        return self.directory / model / job

    def _job_dirs(self, model: str) -> list[Path]:
        model_dir = self.directory / model
        if "/" in model or model.startswith(".") or not model_dir.is_dir():
            return []
        return sorted(p for p in model_dir.iterdir() if p.is_dir())

    def _forget_old(self, model: str) -> None:
        """Make room for a new job: the oldest finished ones beyond :data:`KEEP_JOBS`."""
        finished = [p for p in self.summaries(model) if p.get("state") in FINISHED]
        for progress in finished[KEEP_JOBS - 1 :]:
            shutil.rmtree(self._dir(model, str(progress["job"])), ignore_errors=True)


def job_processes(job: str) -> list[int]:
    """The pids of the processes running job ``job`` on this machine (Linux: from /proc),
    whichever node started them; for the tests and benchmarks that kill or measure one."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # ended meanwhile
                continue
            if WORKER_MODULE.encode() in command and any(job.encode() in c for c in command):
                pids.append(int(entry.name))
    return pids


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(data))
    os.replace(temporary, path)


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass
