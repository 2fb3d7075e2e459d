"""The node's side of tuning jobs: real job processes (``streams.tuning.worker``) on a window
already read, started, watched, started again after kill -9, stopped and given up on."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
from river import datasets

from streams.learning.errors import JobConflict, ModelUnavailable, NodeBusy, UnknownJob
from streams.learning.spec import ModelSpec
from streams.tuning.jobs import MAX_DEATHS, MAX_RUNNING, TuningJobs
from streams.tuning.progress import initial_progress, read_progress, write_progress

SPEC = ModelSpec(
    name="phish",
    task="binary",
    preprocess="none",
    pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()",
)
SPACE = {"LogisticRegression.l2": {"low": 0.0, "high": 0.01}}


def prepared_job(
    directory: Path, job: str, budget: int, model: str = "phish", **request: Any
) -> Path:
    """A job whose window was read already (so that its process needs no broker)."""
    job_dir = directory / model / job
    job_dir.mkdir(parents=True)
    description = {
        "job": job, "model": model, "spec": SPEC.model_dump(mode="json"), "space": SPACE,
        "sampler": "random", "budget": budget, "seed": 1, "window": 400, "metric": "Accuracy",
        "folds": 1, "created": "2026-11-26T00:00:00+00:00", **request,
    }  # fmt: skip
    (job_dir / "request.json").write_bytes(orjson.dumps(description))
    with open(job_dir / "window.jsonl", "wb") as window:
        for i, (x, y) in enumerate(itertools.islice(datasets.Phishing(), 400)):
            window.write(orjson.dumps([f"e{i}", x, y]) + b"\n")
    write_progress(job_dir, initial_progress(description))
    return job_dir


async def until(jobs: TuningJobs, job_dir: Path, check: Any, timeout: float = 60) -> dict[str, Any]:
    """Watch the jobs until ``check(progress)`` holds."""
    for _ in range(int(timeout / 0.1)):
        await jobs.check()
        progress = read_progress(job_dir) or {}
        if check(progress):
            return progress
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached in {timeout} s: {read_progress(job_dir)}")


async def test_a_job_runs_again_after_kill_9_and_is_handed_over_once(tmp_path: Path) -> None:
    handed: list[tuple[str, str, int]] = []

    async def on_done(model: str, job: str, progress: dict[str, Any]) -> dict[str, Any]:
        handed.append((model, job, progress["n_done"]))
        if len(handed) == 1:  # the model is between owners: tried again a second later
            raise ModelUnavailable(model, "is moving")
        return {"state": "joined", "names": ["tuned-x-1"]}

    jobs = TuningJobs(tmp_path, on_done=on_done)
    job_dir = prepared_job(tmp_path, "a1", budget=40)
    assert jobs.resume() == [("phish", "a1")]
    assert jobs.running("phish") == "a1"
    with pytest.raises(JobConflict, match="a1"):
        jobs.start("phish", {})
    first = await until(jobs, job_dir, lambda p: p.get("n_done", 0) >= 2)
    (process,) = jobs._processes.values()
    os.kill(process.pid, signal.SIGKILL)
    await until(jobs, job_dir, lambda p: p.get("state") == "done" and not jobs._processes)
    await jobs.settle()
    done = jobs.get("phish", "a1")
    assert done["state"] == "done" and done["n_done"] == 40 and done["resumed"] == 1
    kept = {t["number"]: t for t in done["trials"]}
    assert all(kept[t["number"]] == t for t in first["trials"])
    assert handed == [("phish", "a1", 40)] * 2
    assert done["challengers"]["state"] == "joined"
    await jobs.check()
    await jobs.settle()
    assert handed == [("phish", "a1", 40)] * 2, "joined once"
    assert jobs.running("phish") is None
    assert [s["job"] for s in jobs.summaries("phish")] == ["a1"]
    assert "trials" not in jobs.summaries("phish")[0]


async def test_a_stopped_job_keeps_its_trials_and_frees_its_slot(tmp_path: Path) -> None:
    jobs = TuningJobs(tmp_path)
    job_dir = prepared_job(tmp_path, "b1", budget=200, folds=5)
    prepared_job(tmp_path, "b2", budget=200, folds=5, model="other")
    jobs.resume()
    assert len(jobs.unfinished()) == MAX_RUNNING == 2
    with pytest.raises(NodeBusy, match="runs 2 tuning jobs already"):
        jobs.start("third", {})
    assert not (tmp_path / "third").exists()
    await jobs.stop("other", "b2")
    await until(jobs, job_dir, lambda p: p.get("n_done", 0) >= 1)
    stopped = await jobs.stop("phish", "b1")
    assert stopped["state"] == "stopped" and 1 <= stopped["n_done"] < 200
    assert not jobs._processes
    assert (await jobs.stop("phish", "b1"))["state"] == "stopped"  # nothing more to do
    assert jobs.get("phish", "b1")["trials"] == stopped["trials"]


async def test_a_job_whose_process_keeps_dying_is_given_up(tmp_path: Path) -> None:
    jobs = TuningJobs(tmp_path)
    job_dir = prepared_job(tmp_path, "c1", budget=3)
    (job_dir / "request.json").write_bytes(b"not json")
    jobs.resume()
    failed = await until(jobs, job_dir, lambda p: p.get("state") == "failed")
    assert f"died {MAX_DEATHS} times" in failed["error"]
    assert str(job_dir / "worker.log") in failed["error"]
    assert "JSONDecodeError" in (job_dir / "worker.log").read_text()


def test_unknown_and_hostile_job_names_are_404(tmp_path: Path) -> None:
    jobs = TuningJobs(tmp_path)
    for model, job in [("phish", "nope"), ("phish", "../../etc"), ("..", "x"), ("phish", ".")]:
        with pytest.raises(UnknownJob):
            jobs.get(model, job)
    assert jobs.summaries("..") == [] and jobs.summaries("phish") == []
