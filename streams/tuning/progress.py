"""A tuning job's progress file: ``progress.json`` in the job directory.

The study process rewrites the file after every finished trial; the node's routes, the
dashboard and the command line read it. A write goes to a temporary file in the same
directory, is flushed to disk, then renamed over the old file, so a reader sees either the
previous progress or the new one, never half of either, even when the writer is killed.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> job_dir = Path(tempfile.mkdtemp())
>>> read_progress(job_dir) is None
True
>>> request = {"job": "0123456789ab", "model": "phishing", "sampler": "tpe", "budget": 20,
...            "seed": 42, "window": 1000, "metric": "LogLoss", "folds": 1}
>>> progress = initial_progress(request)
>>> progress["state"], progress["direction"], progress["n_done"]
('reading', 'minimize', 0)
>>> write_progress(job_dir, progress)
>>> read_progress(job_dir) == progress
True
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from river import metrics as river_metrics

#: The file's name in the job directory.
PROGRESS = "progress.json"
#: The states of a job: ``reading`` the window, ``running`` trials, then one of the last three.
State = Literal["reading", "running", "done", "stopped", "failed"]
#: The states after which the job's process has exited on its own.
FINAL_STATES: frozenset[str] = frozenset({"done", "stopped", "failed"})


def now() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat()


def direction(metric: str) -> Literal["maximize", "minimize"]:
    """Whether a better ``metric`` (a River metric class name) is bigger or smaller."""
    metric_class = getattr(river_metrics, metric)
    return "maximize" if metric_class().bigger_is_better else "minimize"


def initial_progress(request: Mapping[str, Any]) -> dict[str, Any]:
    """The progress of a job that has just started: state ``reading``, no trial yet.

    ``request`` is the job's ``request.json``; its metric must name a River metric class.
    """
    started = now()
    return {
        "job": request["job"],
        "model": request["model"],
        "state": "reading",
        "sampler": request["sampler"],
        "budget": request["budget"],
        "seed": request["seed"],
        "window": request["window"],
        "n_window": None,
        "metric": request["metric"],
        "folds": request["folds"],
        "direction": direction(request["metric"]),
        "n_done": 0,
        "n_failed": 0,
        "trials": [],
        "best": None,
        "error": None,
        "started": started,
        "updated": started,
        "resumed": 0,
    }


def write_progress(job_dir: Path, data: Mapping[str, Any]) -> None:
    """Replace ``job_dir/progress.json`` with ``data``, atomically."""
    payload = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    fd, temporary = tempfile.mkstemp(dir=job_dir, prefix=".progress-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, job_dir / PROGRESS)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_progress(job_dir: Path) -> dict[str, Any] | None:
    """The job's progress, or ``None`` when the file is absent or is not a JSON object."""
    try:
        data = orjson.loads((job_dir / PROGRESS).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def best_configurations(progress: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """The parameters of the ``k`` best complete trials of a job's progress, each set once,
    best first (at equal scores, the earlier trial)."""
    best: list[dict[str, Any]] = []
    seen: set[bytes] = set()
    for trial in ranked(progress["trials"], progress["direction"]):
        key = orjson.dumps(trial["params"], option=orjson.OPT_SORT_KEYS)
        if key not in seen and len(best) < k:
            seen.add(key)
            best.append(dict(trial["params"]))
    return best


def ranked(trials: Iterable[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """The complete trials, best first; at equal scores, the earlier trial first."""
    sign = -1.0 if direction == "maximize" else 1.0
    return sorted(
        (t for t in trials if t["state"] == "complete" and t["score"] is not None),
        key=lambda t: (sign * t["score"], t["number"]),
    )
