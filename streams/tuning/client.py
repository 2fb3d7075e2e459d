"""``streamlearn tune``: a model's tuning jobs from the command line, through a node's routes.

A space file declares the body of ``POST /models/{name}/tune``: a ``space`` table and,
optionally, the top-level keys ``sampler``, ``budget``, ``seed``, ``window``, ``metric`` and
``folds``, which command-line flags override. It is TOML (``.toml``), where a parameter is a
table such as ``[space."LogisticRegression.l2"]``, or JSON (``.json``), where it is the body
itself.

Following a job polls it every :data:`POLL_SECONDS`, draws its trials as a progress bar on
stderr and ends with a summary on stdout; the exit code then says how the job ended (see
:data:`EXIT_CODES`). Ctrl-C stops the following, not the job.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "space.toml"
>>> _ = path.write_text('budget = 30\\n[space."LogisticRegression.l2"]\\nlow = 0.0\\nhigh = 0.01')
>>> request_body(read_space_file(path), {"budget": 50, "seed": None})
{'budget': 50, 'space': {'LogisticRegression.l2': {'low': 0.0, 'high': 0.01}}}
>>> progress = {"job": "4f2a", "model": "clicks", "state": "done", "n_done": 30,
...             "n_failed": 1, "n_window": 1000, "metric": "LogLoss", "direction": "minimize",
...             "best": {"number": 7, "params": {"LogisticRegression.l2": 0.0012},
...                      "score": 0.31234, "spread": None}, "error": None}
>>> print("\\n".join(summary(progress)))
job 4f2a of clicks: done, 30 trials (1 failed) on 1,000 events
best LogLoss (minimize): 0.31234, trial 7
  LogisticRegression.l2 = 0.0012
"""

from __future__ import annotations

import json
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

import httpx
from tqdm import tqdm

from streams.learning.errors import StreamlearnError
from streams.registry_client import admin_client, api_url
from streams.settings import Settings

#: How often a followed job is read.
POLL_SECONDS = 0.5
#: How long following waits out a node that does not answer or answers 503 before it gives up.
PATIENCE_SECONDS = 30.0
#: The exit code of following, by the state the job ended in.
EXIT_CODES: dict[str, int] = {"done": 0, "failed": 1, "stopped": 3}
#: The exit code when Ctrl-C ended the following (the job goes on), as a shell reports SIGINT.
DETACHED = 130
#: The keys a space file may hold beside ``space``; each has a command-line flag.
OPTIONS = ("sampler", "budget", "seed", "window", "metric", "folds")


def read_space_file(path: Path) -> dict[str, Any]:
    """The fields a space file declares, checked for their keys (the node checks values)."""
    try:
        if path.suffix == ".toml":
            fields: Any = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".json":
            fields = json.loads(path.read_text(encoding="utf-8"))
        else:
            raise StreamlearnError(f"{path}: a space file is .toml or .json")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # the decoders' errors are these
        raise StreamlearnError(f"{path}: {exc}") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("space"), dict):
        raise StreamlearnError(f"{path}: no space table (parameter path -> range or choices)")
    unknown = sorted(set(fields) - {"space", *OPTIONS})
    if unknown:
        raise StreamlearnError(
            f"{path}: unknown key {', '.join(map(repr, unknown))}; a space file holds space"
            f" and {', '.join(OPTIONS)}"
        )
    return fields


def request_body(fields: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The body of ``POST /models/{name}/tune``: the file's ``fields``, with each of ``flags``
    that was given (not ``None``) over them."""
    return {**fields, **{k: v for k, v in flags.items() if v is not None}}


class TuningClient:
    """The tuning routes of the node at ``STREAMLEARN_API_URL``, with the admin token; a
    context manager that closes its connections."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.base = api_url(settings)
        self.client = admin_client(settings, transport)

    def __enter__(self) -> TuningClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def start(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Start a job: its first progress."""
        answer: dict[str, Any] = self._call("POST", f"/models/{name}/tune", json=body)
        return answer

    def progress(self, name: str, job: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("GET", f"/models/{name}/tune/{job}")
        return answer

    def jobs(self, name: str) -> list[dict[str, Any]]:
        """The model's jobs, the newest first, without their trials."""
        answer: list[dict[str, Any]] = self._call("GET", f"/models/{name}/tune")
        return answer

    def stop(self, name: str, job: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("DELETE", f"/models/{name}/tune/{job}")
        return answer

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"no node answers at {self.base}: {exc}") from None
        if answer.status_code >= 400:
            error = Refused if answer.status_code != 503 else NodeUnreachable
            raise error(f"{method} {path}: the node answered {refusal(answer)}")
        return answer.json()


class Refused(StreamlearnError, RuntimeError):
    """The node refused a request (4xx, 5xx but 503)."""


class NodeUnreachable(StreamlearnError, ConnectionError):
    """No node answered, or it answered 503: worth asking again in a moment."""


def refusal(answer: httpx.Response) -> str:
    """An error answer in one line: its status and the node's reason, with each field a 422
    refuses named by its path in the body (``budget``, ``space.Step.param``)."""
    try:
        detail = answer.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"{answer.status_code}: {answer.text.strip()[:300]}"
    if isinstance(detail, list):
        reasons = []
        for error in detail:
            loc = [str(part) for part in error.get("loc", [])]
            field = ".".join(loc[1:] if loc[:1] in (["body"], ["path"]) else loc)
            message = str(error.get("msg", "invalid"))
            reasons.append(message if message.startswith(f"{field}:") else f"{field}: {message}")
        detail = "; ".join(reasons)
    hint = " (is STREAMLEARN_ADMIN_TOKEN the node's?)" if answer.status_code == 401 else ""
    return f"{answer.status_code}: {detail}{hint}"


def start_job(
    client: TuningClient,
    name: str,
    space_file: Path,
    flags: Mapping[str, Any],
    *,
    follow_it: bool = True,
    out: TextIO | None = None,
) -> int:
    """Start a job from ``space_file`` with ``flags`` over it and print its id, alone on the
    first line of ``out`` (stdout); then follow it, unless ``follow_it`` is false (exit 0)."""
    out = out or sys.stdout
    job = client.start(name, request_body(read_space_file(space_file), flags))["job"]
    _write(out, [job])
    if follow_it:
        return follow(client, name, job, out=out)
    sys.stderr.write(f"follow it: streamlearn tune {name} --follow {job}\n")
    return 0


def stop_job(client: TuningClient, name: str, job: str, *, out: TextIO | None = None) -> int:
    """Stop a job and print its summary (a job that had ended is left as it was); exit 0."""
    _write(out or sys.stdout, summary(client.stop(name, job)))
    return 0


def list_jobs(client: TuningClient, name: str, *, out: TextIO | None = None) -> int:
    """Print the model's jobs, the newest first, one :func:`job_line` each; exit 0."""
    _write(out or sys.stdout, [job_line(job) for job in client.jobs(name)])
    return 0


def follow(
    client: TuningClient,
    name: str,
    job: str,
    *,
    out: TextIO | None = None,
    poll: float = POLL_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Follow a job until it ends, with a progress bar on stderr; print its summary on ``out``
    (stdout); the exit code of :data:`EXIT_CODES`. Ctrl-C ends the following alone, saying
    how to follow the job again or stop it, and returns :data:`DETACHED`."""
    out = out or sys.stdout
    waited = 0.0
    with tqdm(total=None, desc=f"tune {name} {job}", unit="trial", leave=True) as bar:
        try:
            while True:
                try:
                    progress = client.progress(name, job)
                    waited = 0.0
                except NodeUnreachable as exc:
                    waited += poll
                    if waited >= PATIENCE_SECONDS:
                        raise
                    bar.set_postfix_str(f"retrying: {exc}", refresh=True)
                else:
                    _draw(bar, progress)
                    if progress["state"] in EXIT_CODES:
                        break
                sleep(poll)
        except KeyboardInterrupt:
            bar.close()
            sys.stderr.write(
                f"\nstopped following job {job}; it goes on running on the node.\n"
                f"  follow it again: streamlearn tune {name} --follow {job}\n"
                f"  stop it:         streamlearn tune {name} --stop {job}\n"
            )
            return DETACHED
    _write(out, summary(progress))
    return EXIT_CODES[progress["state"]]


def _draw(bar: tqdm[Any], progress: Mapping[str, Any]) -> None:
    bar.total = progress["budget"]
    bar.n = progress["n_done"]
    best = progress.get("best")
    score = f"best {progress['metric']} {_number(best['score'])}, " if best else ""
    bar.set_postfix_str(f"{score}{progress['state']}", refresh=True)


def summary(progress: Mapping[str, Any]) -> list[str]:
    """A job's outcome, for a person: its state, the best trial and its parameters, what
    became of its challengers."""
    n_window = progress.get("n_window")
    on = f" on {n_window:,} events" if n_window is not None else ""
    lines = [
        f"job {progress['job']} of {progress['model']}: {progress['state']},"
        f" {progress['n_done']} trials ({progress['n_failed']} failed){on}"
    ]
    if progress.get("error"):
        lines.append(f"error: {progress['error']}")
    best = progress.get("best")
    if best is None:
        lines.append("no trial completed")
    else:
        spread = f" ± {_number(best['spread'])}" if best.get("spread") is not None else ""
        lines.append(
            f"best {progress['metric']} ({progress['direction']}): {_number(best['score'])}"
            f"{spread}, trial {best['number']}"
        )
        lines += [f"  {path} = {value!r}" for path, value in best["params"].items()]
    challengers = progress.get("challengers")
    if challengers:
        names = ", ".join(challengers.get("names", []))
        version = challengers.get("version")
        lines.append(
            f"challengers: {challengers['state']}"
            + (f" {names}" if names else "")
            + (f" (spec v{version})" if version is not None else "")
            + (f": {challengers['detail']}" if challengers.get("detail") else "")
        )
    return lines


def job_line(job: Mapping[str, Any]) -> str:
    """One job of a list, tab-separated: id, state, trials done of the budget, best score,
    the sampler, when it started."""
    best = job.get("best")
    score = f"{job['metric']} {_number(best['score'])}" if best else "-"
    return (
        f"{job['job']}\t{job['state']}\t{job['n_done']}/{job['budget']}\t{score}"
        f"\t{job['sampler']}\t{job['started']}"
    )


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _write(out: TextIO, lines: list[str]) -> None:
    out.write("".join(line + "\n" for line in lines))
    out.flush()
