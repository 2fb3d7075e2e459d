"""Tuning on the stream's own history, on a real broker: a job reads the model's last
labelled events from its partitions (joined as the node joins them), scores each trial as
River's progressive validation does, hands its best configurations to the live race, and
survives kill -9 of its process and of its node."""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
from typing import Any

import httpx
import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, optim, preprocessing

from streams.tuning.jobs import job_processes
from tests.integration.conftest import NodeProcess
from tests.integration.kafka_io import produce, run
from tests.integration.test_scale import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "tuning-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODELS = """
[models.phish]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]
challengers_from_tuning = 2
"""
SPACE = {
    "LogisticRegression.l2": {"low": 0.0, "high": 0.01},
    "LogisticRegression.optimizer.lr": {"low": 0.005, "high": 0.5, "log": True},
}
#: Events with their label inline, then events whose label comes later on ``labels``.
INLINE, LATER = 900, 350
WINDOW = 1_000


def phishing() -> list[tuple[dict[str, Any], bool]]:
    return list(itertools.islice(datasets.Phishing(), INLINE + LATER))


def feed(node: NodeProcess, data: list[tuple[dict[str, Any], bool]]) -> None:
    """The first :data:`INLINE` events labelled inline, with a duplicate and a string value
    the numbers-only pipeline refuses; the rest labelled later, some labels before their
    events."""
    key = b"phish"
    inline = [{"event_id": f"p{i}", "model": "phish", "features": x, "label": y}
              for i, (x, y) in enumerate(data[:INLINE])]  # fmt: skip
    inline.insert(10, dict(inline[3]))  # the same event id again: learned once
    inline.insert(20, {"event_id": "bad", "model": "phish", "features": {"x": "text"},
                       "label": True})  # fmt: skip
    values = [orjson.dumps(inline[i : i + 50]) for i in range(0, len(inline), 50)]
    run(produce(node.bootstrap, node.topic("events"), values, key, **node.client_options))
    later = list(enumerate(data[INLINE:], start=INLINE))
    early = [orjson.dumps({"event_id": f"p{i}", "model": "phish", "label": y})
             for i, (_, y) in later[:20]]  # fmt: skip
    run(produce(node.bootstrap, node.topic("labels"), early, key, **node.client_options))
    node.wait_for("phish", "n_labels_waiting", 20, timeout=120)
    events = [orjson.dumps([{"event_id": f"p{i}", "model": "phish", "features": x}
                            for i, (x, _) in later[j : j + 50]])
              for j in range(0, len(later), 50)]  # fmt: skip
    run(produce(node.bootstrap, node.topic("events"), events, key, **node.client_options))
    node.wait_for("phish", "n_pending_labels", LATER - 20, timeout=120)
    labels = [orjson.dumps({"event_id": f"p{i}", "model": "phish", "label": y})
              for i, (_, y) in later[20:]]  # fmt: skip
    run(produce(node.bootstrap, node.topic("labels"), labels, key, **node.client_options))
    node.wait_for("phish", "n_learned", INLINE + LATER, timeout=120)


def river_pipeline(params: dict[str, Any]) -> Any:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        l2=params["LogisticRegression.l2"],
        optimizer=optim.SGD(params["LogisticRegression.optimizer.lr"]),
    )


def tune(node: NodeProcess, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{node.url}/models/phish/tune", json=body, headers=AUTH, timeout=30)


def follow(node: NodeProcess, job: str, until: Any, timeout: float = 180) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(node.get(f"/models/phish/tune/{job}").json())
        return bool(until(seen))

    wait_until(reached, timeout, f"job {job} to reach a state; last seen {seen.get('state')}")
    return seen


def test_a_job_scores_as_river_on_the_window_and_its_best_join_the_race(start_node: Any) -> None:
    node = start_node(MODELS, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    data = phishing()
    feed(node, data)

    # Refused, each naming its field; nothing started.
    refusals: dict[tuple[str, ...], dict[str, Any]] = {
        ("body", "space", "LogisticRegression.nope"): {"space": {"LogisticRegression.nope": {
            "low": 0, "high": 1}}},
        ("body", "space", "LogisticRegression.l2", "high"): {"space": {
            "LogisticRegression.l2": {"low": 0.1, "high": 0.1}}},
        ("body", "budget"): {"space": SPACE, "budget": 201},
        ("body", "window"): {"space": SPACE, "window": INLINE + LATER + 1},
        ("body", "metric"): {"space": SPACE, "metric": "MAE"},
    }  # fmt: skip
    for loc, body in refusals.items():
        answer = tune(node, body)
        assert answer.status_code == 422, answer.text
        assert tuple(answer.json()["detail"][0]["loc"]) == loc, answer.text
    assert httpx.post(f"{node.url}/models/phish/tune", json={"space": SPACE}).status_code == 401
    assert node.get("/models/phish/tune").json() == []

    started = tune(node, {"space": SPACE, "sampler": "tpe", "budget": 8, "seed": 1,
                          "window": WINDOW})  # fmt: skip
    assert started.status_code == 202, started.text
    job = started.json()["job"]
    second = tune(node, {"space": SPACE, "budget": 2, "window": 100})
    assert second.status_code == 409, second.text
    assert job in second.json()["detail"]

    done = follow(node, job, lambda p: p["state"] in ("done", "failed", "stopped"))
    assert done["state"] == "done", done
    assert done["n_done"] == 8 and done["n_window"] == WINDOW
    # The window is the last WINDOW events in the order the node learned them (inline ones,
    # then those whose label came later): each trial's score is River's on them.
    window = [(x, y) for x, y in data[-WINDOW:]]
    for trial in done["trials"]:
        params = trial["params"]
        assert 0.0 <= params["LogisticRegression.l2"] <= 0.01
        assert 0.005 <= params["LogisticRegression.optimizer.lr"] <= 0.5
        expected = evaluate.progressive_val_score(
            dataset=window, model=river_pipeline(params), metric=metrics.Accuracy()
        ).get()
        assert math.isclose(trial["score"], expected, rel_tol=0, abs_tol=1e-9), trial
    best = max(done["trials"], key=lambda t: t["score"])
    assert done["best"]["score"] == best["score"]

    # The best two join the race as challengers, in place: the champion keeps its events.
    def joined() -> bool:
        progress = node.get(f"/models/phish/tune/{job}").json()
        return bool(progress.get("challengers", {}).get("state") == "joined")

    wait_until(joined, 60, "the tuned challengers to join the race")
    names = [f"tuned-{job}-1", f"tuned-{job}-2"]
    spec = node.get("/models/phish/spec").json()
    assert list(spec["spec"]["tuned"]) == names
    assert spec["spec"]["tuned"][names[0]] == done["best"]["params"]
    board = node.get("/models/phish/candidates").json()
    assert [c["name"] for c in board["candidates"]][1:] == names
    assert board["candidates"][0]["n_learned"] == INLINE + LATER
    more = [{"event_id": f"m{i}", "model": "phish", "features": x, "label": y}
            for i, (x, y) in enumerate(data[:100])]  # fmt: skip
    run(produce(node.bootstrap, node.topic("events"), [orjson.dumps(more)], b"phish",
                **node.client_options))  # fmt: skip
    node.wait_for("phish", "n_learned", INLINE + LATER + 100)
    board = node.get("/models/phish/candidates").json()
    assert [c["n_learned"] for c in board["candidates"][1:]] == [100, 100]
    promoted = httpx.post(f"{node.url}/models/phish/candidates/{names[0]}/promote",
                          headers=AUTH, timeout=30)  # fmt: skip
    assert promoted.status_code == 200, promoted.text
    assert node.get("/models/phish/candidates").json()["champion"] == names[0]


def test_a_job_resumes_after_kill_9_of_its_process_and_of_its_node(start_node: Any) -> None:
    node = start_node(MODELS.replace("challengers_from_tuning = 2", ""),
                      STREAMLEARN_ADMIN_TOKEN=TOKEN)  # fmt: skip
    data = phishing()
    feed(node, data)
    started = tune(node, {"space": SPACE, "sampler": "random", "budget": 60, "seed": 3,
                          "window": WINDOW, "folds": 3})  # fmt: skip
    assert started.status_code == 202, started.text
    job = started.json()["job"]
    before = follow(node, job, lambda p: p["n_done"] >= 3)
    assert all(len(t["folds"]) == 3 and t["spread"] is not None for t in before["trials"])
    for trial in before["trials"]:
        assert math.isclose(trial["score"], sum(trial["folds"]) / 3, abs_tol=1e-12)

    # kill -9 of the job's process: the node starts it again, and the study goes on.
    (pid,) = job_processes(job)
    os.kill(pid, signal.SIGKILL)
    after = follow(node, job, lambda p: p["resumed"] >= 1 and p["n_done"] > before["n_done"])
    kept = {t["number"]: t for t in after["trials"]}
    for trial in before["trials"]:
        assert kept[trial["number"]] == trial

    # kill -9 of the node: the job's process dies with it; a new start resumes the job.
    node.kill()
    wait_until(lambda: not job_processes(job), 10, "the job's process to die with its node")
    node.start()
    resumed = follow(node, job, lambda p: p["resumed"] >= 2 and p["n_done"] > after["n_done"])
    assert resumed["state"] == "running"
    kept = {t["number"]: t for t in resumed["trials"]}
    for trial in after["trials"]:
        assert kept[trial["number"]] == trial

    # DELETE stops it: its trials are kept, its process is gone.
    stopped = httpx.delete(f"{node.url}/models/phish/tune/{job}", headers=AUTH, timeout=30)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["state"] == "stopped"
    assert stopped.json()["n_done"] < 60
    wait_until(lambda: not job_processes(job), 10, "the stopped job's process to end")
    time.sleep(1.0)
    assert node.get(f"/models/phish/tune/{job}").json()["state"] == "stopped"
    assert httpx.delete(f"{node.url}/models/phish/tune/nope", headers=AUTH).status_code == 404
