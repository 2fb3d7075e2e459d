"""``streamlearn tune`` against a real HTTP server: a small FastAPI app, served by uvicorn in a
thread, that answers the four tuning routes over in-memory jobs whose trials advance each
time a job is read. It checks the request bodies the command sends, its output, its exit
codes, its one-line errors and Ctrl-C (in-process, and as a real SIGINT to a subprocess)."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from streams.cli import main
from streams.settings import Settings
from streams.tuning.client import DETACHED, TuningClient, follow

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "tok-3f9a"
SPACE_TOML = """\
sampler = "random"
budget = 4
window = 500

[space."LogisticRegression.l2"]
low = 0.0
high = 0.01

[space."LogisticRegression.optimizer.lr.learning_rate"]
choices = [0.01, 0.1]
"""
SPACE = {
    "LogisticRegression.l2": {"low": 0.0, "high": 0.01},
    "LogisticRegression.optimizer.lr.learning_rate": {"choices": [0.01, 0.1]},
}


def _answer(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _invalid(loc: list[str], msg: str) -> JSONResponse:
    """A 422 as FastAPI answers it."""
    return _answer(422, [{"type": "value_error", "loc": loc, "msg": msg}])


@dataclass
class FakeNode:
    """The tuning routes of a node holding one model, ``clicks``, over jobs in memory: each
    ``GET`` of a job finishes ``per_read`` more trials, until the budget is spent and the job
    ends in ``outcome``."""

    outcome: str = "done"
    per_read: int = 2
    #: How many reads of a job answer 503 before the first that answers.
    unavailable: int = 0
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def add_job(self, budget: int = 4, **fields: Any) -> dict[str, Any]:
        job = f"job{len(self.jobs) + 1:04d}"
        self.jobs[job] = {
            "job": job, "model": "clicks", "state": "reading", "sampler": "tpe",
            "budget": budget, "seed": 42, "window": 1000, "n_window": None,
            "metric": "LogLoss", "folds": 1, "direction": "minimize", "n_done": 0,
            "n_failed": 0, "trials": [], "best": None, "error": None,
            "started": f"2025-01-01T00:00:{len(self.jobs):02d}+00:00",
            "updated": "2025-01-01T00:00:00+00:00", "resumed": 0, **fields,
        }  # fmt: skip
        return self.jobs[job]

    def advance(self, progress: dict[str, Any]) -> None:
        if progress["state"] not in ("reading", "running"):
            return
        progress.update(state="running", n_window=1000)
        for _ in range(min(self.per_read, progress["budget"] - progress["n_done"])):
            number = progress["n_done"]
            score = 0.5 - 0.01 * number
            progress["trials"].append({
                "number": number, "params": {"LogisticRegression.l2": 0.001 * number},
                "score": score, "folds": None, "spread": None, "state": "complete",
                "error": None, "seconds": 0.1,
            })  # fmt: skip
            progress["n_done"] += 1
            progress["best"] = {"number": number, "params": {"LogisticRegression.l2": 0.001 *
                                number}, "score": score, "spread": None}  # fmt: skip
        if progress["n_done"] == progress["budget"]:
            progress["state"] = self.outcome
            if self.outcome == "failed":
                progress["error"] = "the window holds 3 labelled events; a trial needs 10"
            if self.outcome == "done":
                progress["challengers"] = {"state": "joined", "version": 3,
                                           "names": [f"tuned-{progress['job']}-1"]}  # fmt: skip

    def api(self) -> FastAPI:
        api = FastAPI()

        def admin(request: Request) -> JSONResponse | None:
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return _answer(401, "send Authorization: Bearer <STREAMLEARN_ADMIN_TOKEN>")
            return None

        @api.post("/models/{name}/tune", response_model=None)
        async def start(name: str, request: Request) -> JSONResponse:
            self.calls.append(f"POST {name}")
            refused = admin(request)
            if refused is not None:
                return refused
            if name != "clicks":
                return _answer(404, f"no model named {name!r}")
            body = json.loads(await request.body())
            self.bodies.append(body)
            if body.get("budget", 20) > 200:
                return _invalid(["body", "budget"], "Input should be less than or equal to 200")
            for path in body["space"]:
                if not path.startswith("LogisticRegression."):
                    step = path.split(".")[0]
                    message = f"space.{path}: no step {step} in the pipeline"
                    return _invalid(["body", "space", path], message)
            running = [j for j, p in self.jobs.items() if p["state"] in ("reading", "running")]
            if running:
                return _answer(409, f"model 'clicks' has a tuning job running: {running[0]}")
            options = {k: v for k, v in body.items() if k != "space"}
            return JSONResponse(self.add_job(**options), status_code=202)

        @api.get("/models/{name}/tune")
        async def jobs(name: str) -> list[dict[str, Any]]:
            self.calls.append(f"GET {name}")
            listed = sorted(self.jobs.values(), key=lambda p: p["started"], reverse=True)
            return [{k: v for k, v in p.items() if k != "trials"} for p in listed]

        @api.get("/models/{name}/tune/{job}", response_model=None)
        async def read(name: str, job: str) -> JSONResponse:
            self.calls.append(f"GET {name} {job}")
            if self.unavailable:
                self.unavailable -= 1
                return _answer(503, "the model is moving to another node; retry in a moment")
            if job not in self.jobs:
                return _answer(404, f"model 'clicks' has no tuning job {job!r}")
            self.advance(self.jobs[job])
            return JSONResponse(self.jobs[job])

        @api.delete("/models/{name}/tune/{job}", response_model=None)
        async def stop(name: str, job: str, request: Request) -> JSONResponse:
            self.calls.append(f"DELETE {name} {job}")
            refused = admin(request)
            if refused is not None:
                return refused
            progress = self.jobs[job]
            if progress["state"] in ("reading", "running"):
                progress["state"] = "stopped"
            return JSONResponse(progress)

        return api


@pytest.fixture
def node(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNode]:
    """A :class:`FakeNode` served by uvicorn on a free local port, which the command's
    settings point at (with the admin token)."""
    fake = FakeNode()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake.api(), lifespan="off", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    monkeypatch.setenv("STREAMLEARN_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("STREAMLEARN_ADMIN_TOKEN", TOKEN)
    yield fake
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


def space_file(tmp_path: Path, text: str = SPACE_TOML, name: str = "space.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_start_sends_the_file_with_the_flags_over_it_and_follows_to_done(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["tune", "clicks", space_file(tmp_path), "--budget", "6", "--seed", "7",
                 "--folds", "3"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert node.bodies == [
        {"sampler": "random", "budget": 6, "window": 500, "space": SPACE, "seed": 7, "folds": 3}
    ]
    lines = out.splitlines()
    assert lines[0] == "job0001"
    assert lines[1] == "job job0001 of clicks: done, 6 trials (0 failed) on 1,000 events"
    assert lines[2] == "best LogLoss (minimize): 0.45, trial 5"
    assert lines[3] == "  LogisticRegression.l2 = 0.005"
    assert lines[4] == "challengers: joined tuned-job0001-1 (spec v3)"
    # The bar, on stderr: trials done of the budget, the best score, the state.
    assert "6/6" in err and "best LogLoss 0.45, done" in err


def test_a_json_space_file_is_the_body_itself_and_no_follow_prints_the_id_alone(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"space": SPACE, "sampler": "grid", "metric": "Accuracy"}
    path = space_file(tmp_path, json.dumps(body), "space.json")
    code = main(["tune", "clicks", path, "--sampler", "tpe", "--no-follow"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert node.bodies == [{**body, "sampler": "tpe"}]
    assert out == "job0001\n"
    assert "streamlearn tune clicks --follow job0001" in err
    assert node.calls == ["POST clicks"]


@pytest.mark.parametrize(("outcome", "code"), [("done", 0), ("failed", 1), ("stopped", 3)])
def test_following_exits_with_the_code_of_the_state_the_job_ended_in(
    node: FakeNode, capsys: pytest.CaptureFixture[str], outcome: str, code: int
) -> None:
    node.outcome = outcome
    job = node.add_job(budget=3)["job"]
    assert main(["tune", "clicks", "--follow", job]) == code
    out, _ = capsys.readouterr()
    assert out.startswith(f"job {job} of clicks: {outcome}, 3 trials (0 failed)")
    if outcome == "failed":
        assert "error: the window holds 3 labelled events; a trial needs 10" in out


def test_following_logs_no_line_per_request(
    node: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx's INFO line per request would interleave with the progress bar."""
    caplog.set_level(logging.INFO)
    job = node.add_job(budget=3)["job"]
    assert main(["tune", "clicks", "--follow", job]) == 0
    assert len(node.calls) > 1
    assert [r.getMessage() for r in caplog.records if r.name == "httpx"] == []


def test_following_waits_out_a_node_that_answers_503(
    node: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    node.unavailable, node.per_read = 1, 5
    job = node.add_job(budget=5)["job"]
    assert main(["tune", "clicks", "--follow", job]) == 0
    out, err = capsys.readouterr()
    assert "retrying" in err and "503" in err
    assert out.startswith(f"job {job} of clicks: done, 5 trials")


def test_stop_and_list(node: FakeNode, capsys: pytest.CaptureFixture[str]) -> None:
    first = node.add_job(budget=2)
    node.advance(first)  # done
    second = node.add_job(budget=9)["job"]
    assert main(["tune", "clicks", "--list"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"{second}\treading\t0/9\t-\ttpe\t2025-01-01T00:00:01+00:00",
        f"{first['job']}\tdone\t2/2\tLogLoss 0.49\ttpe\t2025-01-01T00:00:00+00:00",
    ]
    assert main(["tune", "clicks", "--stop", second]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"job {second} of clicks: stopped, 0 trials (0 failed)",
        "no trial completed",
    ]
    assert node.calls[-1] == f"DELETE clicks {second}"


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--budget", "500"],
         "POST /models/clicks/tune: the node answered 422: budget: Input should be less than"
         " or equal to 200"),
        (["--budget", "5"], "POST /models/clicks/tune: the node answered 409: model 'clicks'"
         " has a tuning job running: job0001"),
    ],
)  # fmt: skip
def test_a_refusal_is_one_line_naming_the_field(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
    line: str,
) -> None:  # fmt: skip
    if "409" in line:
        node.add_job()
    assert main(["tune", "clicks", space_file(tmp_path), *argv]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"streamlearn: {line}\n")


def test_a_refused_space_parameter_is_named_by_its_path(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = space_file(tmp_path, '[space."Nope.alpha"]\nlow = 0.1\nhigh = 1.0\n')
    assert main(["tune", "clicks", path]) == 2
    _, err = capsys.readouterr()
    assert err == (
        "streamlearn: POST /models/clicks/tune: the node answered 422:"
        " space.Nope.alpha: no step Nope in the pipeline\n"
    )


def test_a_wrong_token_is_one_line(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STREAMLEARN_ADMIN_TOKEN", "wrong")
    assert main(["tune", "clicks", space_file(tmp_path)]) == 2
    _, err = capsys.readouterr()
    assert err == (
        "streamlearn: POST /models/clicks/tune: the node answered 401: send Authorization:"
        " Bearer <STREAMLEARN_ADMIN_TOKEN> (is STREAMLEARN_ADMIN_TOKEN the node's?)\n"
    )
    assert node.bodies == []


@pytest.mark.parametrize(
    ("text", "name", "says"),
    [
        ('budget = 3\nspeed = 2\n[space."A.b"]\nlow = 1\nhigh = 2\n', "space.toml",
         "unknown key 'speed'; a space file holds space and sampler, budget"),
        ("budget = 3\n", "space.toml", "no space table"),
        ("[space\n", "space.toml", "Expected ']'"),
        ("{}", "space.yaml", "a space file is .toml or .json"),
    ],
)  # fmt: skip
def test_a_bad_space_file_is_one_line_and_sends_nothing(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, name: str,
    says: str,
) -> None:  # fmt: skip
    assert main(["tune", "clicks", space_file(tmp_path, text, name)]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"streamlearn: {tmp_path / name}: ") and says in err, err
    assert node.calls == []


def test_flags_that_start_a_job_go_alone(
    node: FakeNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "clicks", "--list", "--budget", "3"]) == 2
    assert main(["tune", "clicks"]) == 2
    _, err = capsys.readouterr()
    assert err.splitlines() == [
        "streamlearn: tune: a space file and its flags start a job, alone",
        "streamlearn: tune needs a space file, --follow JOB, --stop JOB or --list",
    ]
    assert node.calls == []


def test_no_node_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there
    monkeypatch.setenv("STREAMLEARN_API_URL", f"http://127.0.0.1:{port}")
    assert main(["tune", "clicks", "--list"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"streamlearn: no node answers at http://127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_ctrl_c_ends_the_following_not_the_job(
    node: FakeNode, capsys: pytest.CaptureFixture[str]
) -> None:
    job = node.add_job(budget=100)["job"]
    reads = 0

    def sleep(seconds: float) -> None:
        nonlocal reads
        reads += 1
        if reads == 2:
            raise KeyboardInterrupt

    out = io.StringIO()
    with TuningClient(Settings()) as client:
        assert follow(client, "clicks", job, out=out, sleep=sleep) == DETACHED
    _, err = capsys.readouterr()
    assert out.getvalue() == ""
    assert f"follow it again: streamlearn tune clicks --follow {job}" in err
    assert f"stop it:         streamlearn tune clicks --stop {job}" in err
    assert node.jobs[job]["state"] == "running"
    assert not any(call.startswith("DELETE") for call in node.calls)


def test_sigint_to_the_command_ends_the_following_with_130(node: FakeNode) -> None:
    job = node.add_job(budget=1000)["job"]
    node.per_read = 1
    command = subprocess.Popen(
        [sys.executable, "-m", "streams.cli", "tune", "clicks", "--follow", job],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while node.jobs[job]["n_done"] < 2:
        assert time.monotonic() < deadline and command.poll() is None, "no reads"
        time.sleep(0.05)
    command.send_signal(signal.SIGINT)
    out, err = command.communicate(timeout=30)
    assert command.returncode == DETACHED, err
    assert out == ""
    assert f"stopped following job {job}; it goes on running on the node." in err
    assert "Traceback" not in err
    assert node.jobs[job]["state"] == "running"
