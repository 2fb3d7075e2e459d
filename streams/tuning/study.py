"""The Optuna study of one tuning job: trials of a model's pipeline, scored on the window.

A job directory holds ``request.json`` (what to tune, how, and for how many trials) and
``window.jsonl`` (the labelled events the node learned, in order). :func:`run` asks Optuna for
one configuration at a time, scores a fresh model built with it on the window (progressive
validation, or prequential k-fold cross-validation when ``folds`` is 2 or more), tells Optuna
the score, and rewrites ``progress.json`` after each trial.

The study lives in ``journal.log``, Optuna's append-only journal, and everything the progress
file shows is rebuilt from it, so the process may be killed at any moment, ``kill -9``
included, and :func:`run` called again on the same directory continues where it stopped:

- a write cut short (a kill during it, a full disk) tears the journal's last line. Optuna
  skips a torn last line when it reads, but its next append is glued to it and unreadable
  (in Optuna 5.0 the ``study.ask()`` that appended fails at once, with an ``AttributeError``),
  so the torn bytes are cut off before the journal is opened;
- a kill can leave the journal's lock (``journal.log.lock``) behind, which Optuna forces only
  after 30 seconds; a job runs in one process at a time, so a lock found at start is stale;
- the trial that was running is marked failed and *interrupted*, and its configuration is
  queued again; interrupted trials are no trials of the job: neither listed nor counted;
- trials that finished are kept as they are, never run again;
- the random and TPE samplers are seeded with the seed plus the number of trials already in
  the study, so that a resumed job does not draw again the configurations it started with.

Examples
--------
>>> from streams.learning.spec import ModelSpec
>>> from streams.learning.space import parse_space
>>> from streams.learning.pipeline import parse_estimator
>>> spec = ModelSpec(name="m", task="binary", pipeline="linear_model.LogisticRegression()")
>>> space = parse_space({"l2": {"low": 0.0, "high": 0.1}}, parse_estimator(spec.pipeline))
>>> model = trial_estimator(spec, space, {"l2": 0.05})
>>> list(model.steps), model["LogisticRegression"].l2
(['AutoPreprocessor', 'LogisticRegression'], 0.05)
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import orjson
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState
from pydantic import ValidationError

from streams.learning.errors import InvalidSpace, StreamlearnError
from streams.learning.metrics import ALLOWED
from streams.learning.pipeline import parse_estimator
from streams.learning.preprocessing import AutoPreprocessor
from streams.learning.prequential import (
    Score,
    TrialFailed,
    Window,
    prequential_kfold,
    progressive_score,
)
from streams.learning.space import Dimension, SearchSpace, parse_space
from streams.learning.spec import ModelSpec
from streams.tuning.progress import (
    direction,
    initial_progress,
    now,
    ranked,
    read_progress,
    write_progress,
)

#: The files of a job directory.
REQUEST, WINDOW, JOURNAL, STOP = "request.json", "window.jsonl", "journal.log", "stop"
SAMPLERS = ("tpe", "random", "grid")
#: The user attribute a trial's details are kept under in the journal, and the one marking a
#: trial cut short by the end of its process.
_RESULT, _INTERRUPTED = "result", "interrupted"


class JobUnusable(StreamlearnError, ValueError):
    """A tuning job's request or window cannot be used: the job fails before any trial."""


def trial_estimator(spec: ModelSpec, space: SearchSpace, values: dict[str, Any]) -> Any:
    """A fresh estimator of ``spec``'s pipeline with one trial's ``values``, behind the auto
    stage when the spec asks for it, exactly as the node builds its models."""
    pipeline = space.build(spec.pipeline, values)
    if spec.preprocess == "auto":
        return AutoPreprocessor(max_categories=spec.max_categories) | pipeline
    return pipeline


def run(job_dir: Path, stop: threading.Event | None = None) -> dict[str, Any]:
    """Run (or resume) the study of the job in ``job_dir`` until its budget is spent, its grid
    exhausted, or a stop is asked (``stop`` set, or a file ``job_dir/stop``); returns the
    final progress, also written to ``progress.json``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    request: dict[str, Any] = orjson.loads((job_dir / REQUEST).read_bytes())
    progress = read_progress(job_dir) or initial_progress(request)
    try:
        spec, space, window = _read_job(job_dir, request)
    except JobUnusable as exc:
        return _finish(job_dir, progress, "failed", str(exc))
    progress["n_window"] = len(window)
    study, storage = _open_study(job_dir / JOURNAL, request, space)
    if study.trials:
        progress["resumed"] = study.user_attrs.get("resumed", 0) + 1
        study.set_user_attr("resumed", progress["resumed"])
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            _requeue(study, storage, trial, space)
    progress["state"], progress["error"] = "running", None
    _update(job_dir, progress, study, space)

    def make(values: dict[str, Any]) -> Any:
        try:
            return trial_estimator(spec, space, values)
        except Exception as exc:  # River's refusals come in every kind
            raise TrialFailed(f"River refused the values: {type(exc).__name__}: {exc}") from exc

    try:
        while True:
            if len(_finished(study)) >= request["budget"] or _exhausted(study):
                break
            if (stop is not None and stop.is_set()) or (job_dir / STOP).exists():
                return _finish(job_dir, progress, "stopped", None, study, space)
            _run_trial(study, request, space, window, make)
            _update(job_dir, progress, study, space)
    except KeyboardInterrupt:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            _requeue(study, storage, trial, space)
        return _finish(job_dir, progress, "stopped", None, study, space)
    failed = [t for t in _finished(study) if t.state == TrialState.FAIL]
    if failed and len(failed) == len(_finished(study)):
        first = failed[0].user_attrs[_RESULT]["error"]
        error = f"every trial failed; the first: {first}"
        return _finish(job_dir, progress, "failed", error, study, space)
    return _finish(job_dir, progress, "done", None, study, space)


def _read_job(
    job_dir: Path, request: dict[str, Any]
) -> tuple[ModelSpec, SearchSpace, list[tuple[str, dict[str, Any], Any]]]:
    """The job's spec, space and window, checked; raises :class:`JobUnusable`."""
    try:
        spec = ModelSpec(**request["spec"])
    except ValidationError as exc:
        raise JobUnusable(f"spec: {exc.errors()[0]['msg']}") from None
    metric, folds, sampler = request["metric"], request["folds"], request["sampler"]
    if metric not in ALLOWED[spec.task]:
        raise JobUnusable(
            f"metric: {metric!r} cannot score a {spec.task} model; choose from"
            f" {', '.join(sorted(ALLOWED[spec.task]))}"
        )
    if type(folds) is not int or not 1 <= folds <= 10:
        raise JobUnusable(f"folds: an integer from 1 to 10, not {folds!r}")
    for key, least in (("budget", 1), ("seed", 0)):
        if type(request[key]) is not int or request[key] < least:
            raise JobUnusable(f"{key}: a whole number from {least}, not {request[key]!r}")
    if sampler not in SAMPLERS:
        raise JobUnusable(f"sampler: one of {', '.join(SAMPLERS)}, not {sampler!r}")
    try:
        space = parse_space(request["space"], parse_estimator(spec.pipeline))
    except InvalidSpace as exc:
        raise JobUnusable(str(exc)) from None
    return spec, space, _read_window(job_dir / WINDOW)


def _read_window(path: Path) -> list[tuple[str, dict[str, Any], Any]]:
    """The labelled events of ``window.jsonl``, in order."""
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        raise JobUnusable(f"{WINDOW} is missing from the job directory") from None
    window: list[tuple[str, dict[str, Any], Any]] = []
    for number, line in enumerate(lines, start=1):
        try:
            event_id, x, y = orjson.loads(line)
        except (orjson.JSONDecodeError, TypeError, ValueError):
            raise JobUnusable(
                f"{WINDOW} line {number}: not [event_id, {{features}}, label]"
            ) from None
        if not isinstance(x, dict):
            raise JobUnusable(f"{WINDOW} line {number}: the features are not an object")
        window.append((str(event_id), x, y))
    if not window:
        raise JobUnusable("the window holds no labelled event: nothing to score a trial on")
    return window


def _open_study(
    path: Path, request: dict[str, Any], space: SearchSpace
) -> tuple[optuna.Study, JournalStorage]:
    """The job's study, created or loaded, its journal repaired first (see the module)."""
    if path.exists():
        journal = path.read_bytes()
        if journal and not journal.endswith(b"\n"):
            with path.open("r+b") as file:
                file.truncate(journal.rfind(b"\n") + 1)
    Path(f"{path}.lock").unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = JournalStorage(JournalFileBackend(str(path)))
    seed, name = request["seed"], request["sampler"]
    study = optuna.create_study(
        storage=storage,
        study_name=request["job"],
        direction=direction(request["metric"]),
        sampler=_sampler(name, space, seed),
        load_if_exists=True,
    )
    if study.trials and name != "grid":
        # The grid keeps its seed: it fixes the order its cells are numbered in.
        study.sampler = _sampler(name, space, seed + len(study.trials))
    return study, storage


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its call to ``Study.stop`` once the grid is exhausted,
    which works only inside ``Study.optimize``: :func:`run` asks :meth:`is_exhausted`."""

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None


def _sampler(name: str, space: SearchSpace, seed: int) -> optuna.samplers.BaseSampler:
    if name == "grid":
        return _GridSampler(space.grid(), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _exhausted(study: optuna.Study) -> bool:
    """Whether a grid has no cell left to try. A cell whose trial was interrupted counts as
    visited, so the configuration queued again in its place must run first."""
    if not isinstance(study.sampler, _GridSampler) or not study.sampler.is_exhausted(study):
        return False
    return not study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


def _requeue(
    study: optuna.Study, storage: JournalStorage, trial: FrozenTrial, space: SearchSpace
) -> None:
    """Fail a trial its process left running, and queue its configuration again.

    Each step is safe to repeat, should the process die again half way through.
    """
    storage.set_trial_user_attr(trial._trial_id, _INTERRUPTED, True)
    # A queued trial knows its whole configuration before it samples any of it.
    params = trial.system_attrs.get("fixed_params", trial.params)
    if set(params) == set(space.dimensions):
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not any(t.system_attrs.get("fixed_params") == params for t in waiting):
            study.enqueue_trial(params)
    elif "grid_id" in trial.system_attrs:
        # Partly sampled: free its grid cell for a later trial rather than queue it.
        storage.set_trial_system_attr(trial._trial_id, "grid_id", -1)
    storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)


def _suggest(trial: Trial, path: str, dimension: Dimension) -> Any:
    if dimension.kind == "choice":
        return trial.suggest_categorical(path, list(dimension.choices))
    assert dimension.low is not None and dimension.high is not None  # a range has both
    if dimension.kind == "int":
        step = 1 if dimension.step is None else int(dimension.step)
        return trial.suggest_int(
            path, int(dimension.low), int(dimension.high), step=step, log=dimension.log
        )
    return trial.suggest_float(
        path, dimension.low, dimension.high, step=dimension.step, log=dimension.log
    )


def _run_trial(
    study: optuna.Study,
    request: dict[str, Any],
    space: SearchSpace,
    window: Window,
    make: Callable[[dict[str, Any]], Any],
) -> None:
    """Ask for one configuration, score it on the window, and tell the study."""
    trial = study.ask()
    values = {path: _suggest(trial, path, d) for path, d in space.dimensions.items()}
    started = time.perf_counter()
    score: Score | None = None
    error: str | None = None
    try:
        if request["folds"] == 1:
            score = progressive_score(lambda: make(values), window, request["metric"])
        else:
            score = prequential_kfold(
                lambda: make(values), window, request["metric"], request["folds"]
            )
        if score.value is None or not math.isfinite(score.value):
            error = f"{request['metric']} has no finite value on this window ({score.value})"
    except TrialFailed as exc:
        error = str(exc)
    result = {
        "folds": list(score.public()["folds"]) if score and score.folds else None,
        "spread": score.public()["spread"] if score else None,
        "error": error,
        "seconds": round(time.perf_counter() - started, 4),
    }
    trial.set_user_attr(_RESULT, result)
    if error is None and score is not None:
        study.tell(trial, score.value)
    else:
        study.tell(trial, state=TrialState.FAIL)


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    """The job's trials that finished, complete or failed, by number (interrupted ones are
    not the job's trials)."""
    states = (TrialState.COMPLETE, TrialState.FAIL)
    trials = study.get_trials(deepcopy=False, states=states)
    return sorted((t for t in trials if not t.user_attrs.get(_INTERRUPTED)), key=lambda t: t.number)


def _update(
    job_dir: Path, progress: dict[str, Any], study: optuna.Study, space: SearchSpace
) -> None:
    """Rebuild the trials and the best of ``progress`` from the study, and write it."""
    trials = []
    for t in _finished(study):
        result = t.user_attrs.get(_RESULT, {})
        trials.append(
            {
                "number": t.number,
                "params": {p: t.params[p] for p in space.dimensions if p in t.params},
                "score": t.value if t.state == TrialState.COMPLETE else None,
                "folds": result.get("folds"),
                "spread": result.get("spread"),
                "state": "complete" if t.state == TrialState.COMPLETE else "failed",
                "error": result.get("error"),
                "seconds": result.get("seconds"),
            }
        )
    progress["trials"] = trials
    progress["n_done"] = len(trials)
    progress["n_failed"] = sum(t["state"] == "failed" for t in trials)
    best = ranked(trials, progress["direction"])
    keys = ("number", "params", "score", "spread")
    progress["best"] = {key: best[0][key] for key in keys} if best else None
    progress["updated"] = now()
    write_progress(job_dir, progress)


def _finish(
    job_dir: Path,
    progress: dict[str, Any],
    state: str,
    error: str | None,
    study: optuna.Study | None = None,
    space: SearchSpace | None = None,
) -> dict[str, Any]:
    progress["state"], progress["error"] = state, error
    if study is not None and space is not None:
        _update(job_dir, progress, study, space)
    else:
        progress["updated"] = now()
        write_progress(job_dir, progress)
    return progress
