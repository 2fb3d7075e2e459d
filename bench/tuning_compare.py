"""TPE, random and grid search compared on two streams, through the tuning job's own code path.

    .venv/bin/python bench/tuning_compare.py              # 5 seeds, 30 trials per job
    .venv/bin/python bench/tuning_compare.py --seeds 2    # a quicker look

Each job is a temporary job directory (``request.json`` and ``window.jsonl``, as the worker
writes them) handed to :func:`streams.tuning.study.run`, so the journal, the progress file and
the scoring are the ones a node's tuning job uses. Trials are scored by progressive validation
(``folds`` 1) on Accuracy. Per stream and sampler the table gives the best score found (mean
over seeds, and the worst and best seed), the trials needed to reach 99% of the best score any
sampler found on that stream (mean over seeds; a job that never reaches it counts as budget + 1),
and the wall time of one job. Writes ``bench/results/tuning.json``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from river import datasets
from river.datasets import synth

from streams.learning.spec import ModelSpec
from streams.tuning.study import run

RESULTS = Path(__file__).resolve().parent / "results"
SAMPLERS = ("tpe", "random", "grid")

#: Each stream: its pipeline and the space tuned (the grid's points make >= 30 cells).
STREAMS: dict[str, dict[str, Any]] = {
    "phishing": {
        "pipeline": "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
        "space": {
            "LogisticRegression.l2": {"low": 0.0, "high": 0.01, "points": 4},
            "LogisticRegression.optimizer.lr": {
                "low": 0.001,
                "high": 1.0,
                "log": True,
                "points": 4,
            },
            "LogisticRegression.intercept_lr.learning_rate": {
                "low": 0.001,
                "high": 0.1,
                "log": True,
                "points": 3,
            },
        },
    },
    "agrawal-drift": {
        "pipeline": "tree.HoeffdingTreeClassifier()",
        "space": {
            "grace_period": {"low": 50, "high": 400, "points": 3},
            "delta": {"low": 1e-9, "high": 1e-3, "log": True, "points": 3},
            "tau": {"low": 0.01, "high": 0.1, "points": 2},
            "split_criterion": {"choices": ["info_gain", "gini", "hellinger"]},
            "leaf_prediction": {"choices": ["mc", "nb", "nba"]},
        },
    },
}


def events(stream: str) -> list[tuple[str, dict[str, Any], Any]]:
    """The stream's labelled events as ``(event_id, x, y)``."""
    if stream == "phishing":
        rows = list(datasets.Phishing())
    else:
        drifting = synth.ConceptDriftStream(
            stream=synth.Agrawal(classification_function=0, seed=42),
            drift_stream=synth.Agrawal(classification_function=2, seed=42),
            position=5000,
            width=1000,
            seed=1,
        )
        rows = list(itertools.islice(drifting, 10_000))
    return [(f"e{i}", x, y) for i, (x, y) in enumerate(rows)]


def tune(stream: str, window: bytes, n: int, sampler: str, seed: int, budget: int) -> Any:
    """One tuning job in a temporary directory: its final progress and wall time."""
    setup = STREAMS[stream]
    spec = ModelSpec(name=stream, task="binary", pipeline=setup["pipeline"], preprocess="none")
    request = {
        "job": f"{seed:012x}",
        "model": stream,
        "spec": spec.model_dump(mode="json"),
        "space": setup["space"],
        "sampler": sampler,
        "budget": budget,
        "seed": seed,
        "window": n,
        "metric": "Accuracy",
        "folds": 1,
        "created": "2025-01-01T00:00:00+00:00",
    }
    with tempfile.TemporaryDirectory(prefix="tuning-bench-") as directory:
        job_dir = Path(directory)
        (job_dir / "request.json").write_bytes(orjson.dumps(request))
        (job_dir / "window.jsonl").write_bytes(window)
        started = time.perf_counter()
        progress = run(job_dir)
        seconds = time.perf_counter() - started
    if progress["state"] != "done" or progress["n_done"] != budget:
        raise RuntimeError(f"{stream} {sampler} seed {seed}: {progress['state']}")
    return progress, seconds


def trials_to_reach(scores: list[float | None], target: float, budget: int) -> int:
    """The 1-based trial at which ``scores`` first reach ``target``; ``budget + 1`` if never."""
    for i, score in enumerate(scores, start=1):
        if score is not None and score >= target:
            return i
    return budget + 1


def compare(stream: str, seeds: int, budget: int) -> dict[str, Any]:
    window = events(stream)
    lines = b"".join(orjson.dumps(list(event)) + b"\n" for event in window)
    runs: dict[str, list[dict[str, Any]]] = {s: [] for s in SAMPLERS}
    for sampler in SAMPLERS:
        for seed in range(seeds):
            progress, seconds = tune(stream, lines, len(window), sampler, seed, budget)
            scores = [t["score"] for t in progress["trials"]]
            best = progress["best"]
            runs[sampler].append(
                {"seed": seed, "best": best["score"], "best_params": best["params"],
                 "scores": scores, "seconds": seconds}
            )  # fmt: skip
    best_any = max(r["best"] for rs in runs.values() for r in rs)
    target = 0.99 * best_any
    out: dict[str, Any] = {"events": len(window), "best_any": best_any, "target": target}
    for sampler, rs in runs.items():
        reached = [trials_to_reach(r["scores"], target, budget) for r in rs]
        bests = [r["best"] for r in rs]
        out[sampler] = {
            "best_mean": statistics.fmean(bests),
            "best_min": min(bests),
            "best_max": max(bests),
            "trials_to_99": statistics.fmean(reached),
            "not_reached": sum(t > budget for t in reached),
            "found_best_any": sum(b == best_any for b in bests),
            "seconds_mean": statistics.fmean(r["seconds"] for r in rs),
            "runs": rs,
        }
    return out


def table(results: dict[str, Any], budget: int) -> str:
    lines = [
        "| stream | sampler | best Accuracy, mean (min-max) | seeds finding the top score |"
        " trials to 99% of the top score | wall time per job |",
        "|---|---|---|---|---|---|",
    ]
    for stream, found in results["streams"].items():
        for sampler in SAMPLERS:
            r = found[sampler]
            missed = f", {r['not_reached']} not reached" if r["not_reached"] else ""
            lines.append(
                f"| {stream} ({found['events']:,} events) | {sampler} |"
                f" {r['best_mean']:.4f} ({r['best_min']:.4f}-{r['best_max']:.4f}) |"
                f" {r['found_best_any']} of {len(r['runs'])} |"
                f" {r['trials_to_99']:.1f}{missed} | {r['seconds_mean']:.1f} s |"
            )
    lines.append("")
    lines.append(
        f"{results['seeds']} seeds, {budget} trials per job, progressive validation on Accuracy."
        " The top score is the best any sampler found on the stream; a job that never reaches"
        f" 99% of it counts as {budget + 1} trials."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {"seeds": args.seeds, "budget": args.budget, "streams": {}}
    for stream in STREAMS:
        results["streams"][stream] = compare(stream, args.seeds, args.budget)
    results["seconds"] = time.perf_counter() - started
    results["table"] = table(results, args.budget)
    print(results["table"])
    print(f"\n{results['seconds']:.0f} s in all")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tuning.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
