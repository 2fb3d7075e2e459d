from __future__ import annotations

import math
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import optuna
import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, optim, preprocessing

from streams.learning.build import build_estimator
from streams.learning.pipeline import parse_estimator
from streams.learning.space import parse_space
from streams.learning.spec import ModelSpec
from streams.tuning.progress import (
    best_configurations,
    initial_progress,
    read_progress,
    write_progress,
)
from streams.tuning.study import JOURNAL, run

ROOT = Path(__file__).resolve().parents[3]
PIPELINE = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
SPACE = {
    "LogisticRegression.l2": {"low": 0.0, "high": 0.01},
    "LogisticRegression.optimizer.lr": {"low": 0.001, "high": 1.0, "log": True},
}
PHISHING = [(f"e{i}", x, y) for i, (x, y) in enumerate(datasets.Phishing())]


def make_job(
    job_dir: Path,
    *,
    sampler: str = "tpe",
    budget: int = 8,
    seed: int = 7,
    metric: str = "Accuracy",
    folds: int = 1,
    space: dict[str, Any] | None = None,
    preprocess: str = "none",
    window: list[tuple[str, dict[str, Any], Any]] | None = None,
) -> Path:
    """Write a job's request.json and window.jsonl, as the worker does."""
    job_dir.mkdir(parents=True, exist_ok=True)
    spec = ModelSpec(name="phishing", task="binary", pipeline=PIPELINE, preprocess=preprocess)
    request = {
        "job": "0123456789ab",
        "model": "phishing",
        "spec": spec.model_dump(mode="json"),
        "space": SPACE if space is None else space,
        "sampler": sampler,
        "budget": budget,
        "seed": seed,
        "window": 1250,
        "metric": metric,
        "folds": folds,
        "created": "2025-01-01T00:00:00+00:00",
    }
    (job_dir / "request.json").write_bytes(orjson.dumps(request))
    events = PHISHING if window is None else window
    lines = (orjson.dumps(list(event)) + b"\n" for event in events)
    (job_dir / "window.jsonl").write_bytes(b"".join(lines))
    return job_dir


def scores(progress: dict[str, Any]) -> list[float]:
    return [t["score"] for t in progress["trials"] if t["state"] == "complete"]


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
@pytest.mark.parametrize(("metric", "pick"), [("Accuracy", max), ("LogLoss", min)])
def test_each_sampler_runs_the_budget_and_reports_the_best_trial(
    tmp_path: Path, sampler: str, metric: str, pick: Any
) -> None:
    progress = run(make_job(tmp_path, sampler=sampler, metric=metric, budget=6))
    assert progress["state"] == "done"
    assert progress["n_done"] == len(progress["trials"]) == 6
    assert progress["n_window"] == 1250
    assert progress["direction"] == ("maximize" if metric == "Accuracy" else "minimize")
    assert [t["number"] for t in progress["trials"]] == list(range(6))
    best = pick(scores(progress))
    assert progress["best"]["score"] == best
    earliest = next(t for t in progress["trials"] if t["score"] == best)
    assert progress["best"]["number"] == earliest["number"]
    assert read_progress(tmp_path) == progress


def test_a_trial_scores_as_river_progressive_val_score(tmp_path: Path) -> None:
    progress = run(make_job(tmp_path, sampler="random", budget=3))
    data = [(x, y) for _, x, y in PHISHING]
    for trial in progress["trials"]:
        params = trial["params"]
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            l2=params["LogisticRegression.l2"],
            optimizer=optim.SGD(params["LogisticRegression.optimizer.lr"]),
        )
        expected = evaluate.progressive_val_score(data, model, metrics.Accuracy()).get()
        assert math.isclose(trial["score"], expected, rel_tol=0, abs_tol=1e-9)


def test_a_trial_is_built_behind_the_auto_stage_like_the_node_builds_it(tmp_path: Path) -> None:
    job = make_job(tmp_path, sampler="random", budget=2, metric="LogLoss", preprocess="auto")
    progress = run(job)
    spec = ModelSpec(name="phishing", task="binary", pipeline=PIPELINE, preprocess="auto")
    space = parse_space(SPACE, parse_estimator(PIPELINE))
    data = [(x, y) for _, x, y in PHISHING]
    for trial in progress["trials"]:
        model = build_estimator(spec, None, space.clone_params(trial["params"]))
        expected = evaluate.progressive_val_score(data, model, metrics.LogLoss()).get()
        assert math.isclose(trial["score"], expected, rel_tol=0, abs_tol=1e-9)


def test_kfold_trials_report_each_fold_their_spread_and_mean(tmp_path: Path) -> None:
    progress = run(make_job(tmp_path, sampler="random", budget=3, folds=3))
    for trial in progress["trials"]:
        assert len(trial["folds"]) == 3
        assert math.isclose(trial["score"], statistics.fmean(trial["folds"]), abs_tol=1e-12)
        assert math.isclose(trial["spread"], statistics.pstdev(trial["folds"]), abs_tol=1e-12)
    assert progress["best"]["spread"] is not None


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_the_same_seed_draws_the_same_configurations(tmp_path: Path, sampler: str) -> None:
    budget = 13 if sampler == "tpe" else 5  # TPE draws at random for its first 10 trials
    first = run(make_job(tmp_path / "a", sampler=sampler, budget=budget))
    second = run(make_job(tmp_path / "b", sampler=sampler, budget=budget))
    other = run(make_job(tmp_path / "c", sampler=sampler, budget=budget, seed=8))
    params = [[t["params"] for t in p["trials"]] for p in (first, second, other)]
    assert params[0] == params[1] != params[2]


def test_a_grid_smaller_than_the_budget_ends_when_exhausted(tmp_path: Path) -> None:
    space = {"LogisticRegression.l2": {"low": 0.0, "high": 0.01, "points": 3}}
    progress = run(make_job(tmp_path, sampler="grid", budget=10, space=space))
    assert (progress["state"], progress["n_done"], progress["error"]) == ("done", 3, None)
    values = sorted(t["params"]["LogisticRegression.l2"] for t in progress["trials"])
    assert values == [0.0, 0.005, 0.01]


def test_a_job_killed_at_any_moment_resumes_where_it_stopped(tmp_path: Path) -> None:
    job = make_job(tmp_path, sampler="tpe", budget=30, folds=3)
    code = f"from streams.tuning.study import run; import pathlib; run(pathlib.Path({str(job)!r}))"
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            seen = read_progress(job)
            if seen is not None and seen["n_done"] >= 3:
                break
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=10)
    killed = read_progress(job)
    assert killed is not None and killed["state"] == "running" and killed["n_done"] >= 3
    progress = run(job)
    assert (progress["state"], progress["n_done"], progress["resumed"]) == ("done", 30, 1)
    kept = {t["number"]: t for t in progress["trials"]}
    for trial in killed["trials"]:
        assert kept[trial["number"]] == trial


def test_the_trial_a_dead_process_left_running_is_run_again(tmp_path: Path) -> None:
    run(make_job(tmp_path, sampler="random", budget=2))
    job = make_job(tmp_path, sampler="random", budget=4)  # the same job, asked for more
    # What a kill -9 leaves: a trial asked and sampled but never told, the journal's lock,
    # and half a line at the end of the journal.
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(job / JOURNAL))
    )
    study = optuna.load_study(study_name="0123456789ab", storage=storage)
    trial = study.ask()
    left = {
        "LogisticRegression.l2": trial.suggest_float("LogisticRegression.l2", 0.0, 0.01),
        "LogisticRegression.optimizer.lr": trial.suggest_float(
            "LogisticRegression.optimizer.lr", 0.001, 1.0, log=True
        ),
    }
    os.symlink(job / JOURNAL, job / f"{JOURNAL}.lock")
    with (job / JOURNAL).open("ab") as journal:
        journal.write(b'{"op_code": 5, "worker_id": "torn')
    started = time.monotonic()
    progress = run(job)
    assert time.monotonic() - started < 10  # the stale lock was not waited on
    assert (progress["state"], progress["n_done"], progress["resumed"]) == ("done", 4, 1)
    numbers = [t["number"] for t in progress["trials"]]
    assert numbers == [0, 1, 3, 4]  # trial 2 was interrupted: neither listed nor counted
    assert progress["trials"][2]["params"] == left


class StopAfter(threading.Event):
    """A stop event that is set once it has been looked at ``n`` times."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def is_set(self) -> bool:
        self.n -= 1
        return self.n < 0


def test_the_last_grid_cell_a_dead_process_left_running_is_run_again(tmp_path: Path) -> None:
    space = {"LogisticRegression.l2": {"low": 0.0, "high": 0.01, "points": 3}}
    job = make_job(tmp_path, sampler="grid", budget=10, space=space)
    assert run(job, StopAfter(2))["n_done"] == 2
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(job / JOURNAL))
    )
    grid = {"LogisticRegression.l2": [0.0, 0.005, 0.01]}
    sampler = optuna.samplers.GridSampler(grid, seed=7)
    study = optuna.load_study(study_name="0123456789ab", storage=storage, sampler=sampler)
    study.ask().suggest_float("LogisticRegression.l2", 0.0, 0.01)  # the last cell, never told
    progress = run(job)
    assert (progress["state"], progress["n_done"]) == ("done", 3)
    values = sorted(t["params"]["LogisticRegression.l2"] for t in progress["trials"])
    assert values == [0.0, 0.005, 0.01]


def test_a_stop_asked_between_trials_ends_the_job_before_its_budget(tmp_path: Path) -> None:
    job = make_job(tmp_path, budget=6)
    progress = run(job, StopAfter(3))
    assert (progress["state"], progress["n_done"]) == ("stopped", 3)
    (job / "stop").touch()
    assert run(job)["n_done"] == 3
    (job / "stop").unlink()
    progress = run(job)
    assert (progress["state"], progress["n_done"], progress["resumed"]) == ("done", 6, 2)


def test_a_failing_configuration_fails_its_trial_not_the_job(tmp_path: Path) -> None:
    space = {"LogisticRegression.optimizer.lr": {"choices": [0.01, "fast", 0.1]}}
    progress = run(make_job(tmp_path, sampler="grid", budget=5, space=space))
    assert (progress["state"], progress["n_done"], progress["n_failed"]) == ("done", 3, 1)
    failed = next(t for t in progress["trials"] if t["state"] == "failed")
    assert failed["params"] == {"LogisticRegression.optimizer.lr": "fast"}
    assert failed["score"] is None
    assert failed["error"].startswith("event 0 ('e0'): AttributeError:")
    assert progress["best"]["params"] != failed["params"]


def test_a_job_whose_every_trial_fails_is_failed(tmp_path: Path) -> None:
    window = [(f"e{i}", {"site": "example.org", "n": i}, i % 2 == 0) for i in range(50)]
    progress = run(make_job(tmp_path, budget=3, window=window))
    assert (progress["state"], progress["n_done"], progress["n_failed"]) == ("failed", 3, 3)
    assert progress["best"] is None
    assert progress["error"].startswith("every trial failed; the first: event 0 ('e0'): TypeError")


def test_an_unusable_window_fails_the_job_before_any_trial(tmp_path: Path) -> None:
    job = make_job(tmp_path, window=[])
    progress = run(job)
    assert (progress["state"], progress["n_done"]) == ("failed", 0)
    assert "no labelled event" in progress["error"]
    (job / "window.jsonl").write_bytes(b'["e0", {"a": 1}, true]\n["e1", 3]\n')
    assert run(job)["error"] == "window.jsonl line 2: not [event_id, {features}, label]"


def test_the_best_configurations_are_distinct_and_best_first() -> None:
    def trial(number: int, score: float | None, l2: float) -> dict[str, Any]:
        state = "failed" if score is None else "complete"
        return {"number": number, "params": {"l2": l2}, "score": score, "state": state}

    trials = [trial(0, 0.8, 0.1), trial(1, 0.9, 0.2), trial(2, 0.9, 0.3), trial(3, 0.9, 0.2)]
    trials.append(trial(4, None, 0.4))
    progress = {"direction": "maximize", "trials": trials}
    assert best_configurations(progress, 3) == [{"l2": 0.2}, {"l2": 0.3}, {"l2": 0.1}]
    progress["direction"] = "minimize"
    assert best_configurations(progress, 1) == [{"l2": 0.1}]


def test_progress_is_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = orjson.loads(make_job(tmp_path).joinpath("request.json").read_bytes())
    first = initial_progress(request)
    write_progress(tmp_path, first)

    def crash(source: str, target: Path) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        write_progress(tmp_path, {**first, "state": "running"})
    assert read_progress(tmp_path) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "progress.json",
        "request.json",
        "window.jsonl",
    ]


def test_a_reader_never_sees_a_partial_progress_file(tmp_path: Path) -> None:
    done = threading.Event()
    big = {"trials": [{"number": i, "params": {"x": i / 7}} for i in range(2_000)]}

    def writer() -> None:
        for n in range(50):
            write_progress(tmp_path, {**big, "n_done": n})
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set():
        seen = read_progress(tmp_path)
        assert seen is None or len(seen["trials"]) == 2_000
        reads += 1
    thread.join()
    assert reads > 0 and read_progress(tmp_path) == {**big, "n_done": 49}


def test_an_absent_or_invalid_progress_file_reads_as_none(tmp_path: Path) -> None:
    assert read_progress(tmp_path) is None
    (tmp_path / "progress.json").write_bytes(b'{"job": "0123')
    assert read_progress(tmp_path) is None
    (tmp_path / "progress.json").write_bytes(b"[1, 2]")
    assert read_progress(tmp_path) is None
