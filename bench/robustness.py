"""What dirty data and hostile requests do to a node, measured as a new user would see it.

    .venv/bin/python bench/robustness.py      # about 1 minute; starts its own broker

On one node with the demo's Phishing model (``StandardScaler | LogisticRegression``,
``preprocess = "none"``) and its own topics:

1. 200 good events and 2 poison ones (a null, a string), one event per message;
2. Phishing's 1,250 events with 25 poison events interleaved, half one per message and half
   in batches of 40;
3. ``POST /models/phishing/predict`` with a string, a null and a NaN;
4. 200 predict requests of 500 feature names the model never saw: the snapshot size before
   and after;
5. a 20 MB and a 50 MB predict body; the size of a 422 answer to a 5 MB invalid body.

Each figure is printed and written to ``bench/results/robustness.json``. Run it on an older
checkout to get the figures before a change.
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from river import datasets
from run import RESULTS, Node, broker, produce

TOKEN = "bench-token"  # noqa: S105 - the node is the benchmark's own, on loopback
MODELS = """
[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy", "ROCAUC"]
"""


def settle(node: Node, model: str, target: int, quiet: float = 5.0) -> dict[str, Any]:
    """The model's state once ``n_learned`` reaches ``target`` or stops moving for ``quiet`` s."""
    last, since = -1, time.monotonic()
    while True:
        state = node.state(model)
        if state["n_learned"] >= target:
            return state
        if state["n_learned"] != last:
            last, since = state["n_learned"], time.monotonic()
        elif time.monotonic() - since > quiet:
            return state
        time.sleep(0.2)


def poison_run(bootstrap: str, tmp: Path, name: str, values: list[bytes], n: int) -> Any:
    node = Node(bootstrap, MODELS, tmp / name)
    node.start()
    try:
        asyncio.run(produce(bootstrap, f"{node.prefix}events", values, b"phishing"))
        state = settle(node, "phishing", n)
        return {"learned": state["n_learned"], "dead_lettered": state["n_dead_letters"],
                "of": n}  # fmt: skip
    finally:
        node.stop()


def two_poison() -> list[bytes]:
    out = []
    for i, (x, y) in enumerate(datasets.Phishing().take(200)):
        out.append(orjson.dumps({"event_id": f"g{i}", "model": "phishing", "features": x,
                                 "label": y}))  # fmt: skip
        if i in (50, 120):
            bad = {**x, "popup_window": None if i == 50 else "abc"}
            out.append(orjson.dumps({"event_id": f"b{i}", "model": "phishing", "features": bad,
                                     "label": y}))  # fmt: skip
    return out


def phishing_with_25() -> list[bytes]:
    events = []
    for i, (x, y) in enumerate(datasets.Phishing()):
        events.append({"event_id": f"g{i}", "model": "phishing", "features": x, "label": y})
        if i % 50 == 25:
            bad = {**x, "empty_server_form_handler": (None, "abc", "0.5")[i % 3]}
            events.append({"event_id": f"b{i}", "model": "phishing", "features": bad,
                           "label": y})  # fmt: skip
    half = len(events) // 2
    return [orjson.dumps(e) for e in events[:half]] + [
        orjson.dumps(events[i : i + 40]) for i in range(half, len(events), 40)
    ]


def status(client: httpx.Client, path: str, body: bytes) -> int | str:
    """The status of a JSON POST, or how the connection failed."""
    try:
        answer = client.post(path, content=body, headers={"content-type": "application/json"})
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__}: {exc})"
    return answer.status_code


def http_run(bootstrap: str, tmp: Path) -> dict[str, Any]:
    node = Node(bootstrap, MODELS, tmp / "http")
    node.env["STREAMLEARN_ADMIN_TOKEN"] = TOKEN
    node.start()
    out: dict[str, Any] = {}
    try:
        asyncio.run(produce(bootstrap, f"{node.prefix}events", two_poison()[:100], b"phishing"))
        settle(node, "phishing", 100)
        client = httpx.Client(base_url=node.url, timeout=120)
        predict = "/models/phishing/predict"
        for label, body in (("string", b'{"features": {"popup_window": "abc"}}'),
                            ("null", b'{"features": {"popup_window": null}}'),
                            ("NaN", b'{"features": {"popup_window": NaN}}')):  # fmt: skip
            out[f"predict_{label}"] = status(client, predict, body)
        admin = {"Authorization": f"Bearer {TOKEN}"}
        before = client.post("/models/phishing/snapshots", headers=admin).json()["bytes"]
        rng = random.Random(0)
        for _ in range(200):
            x = {f"f{rng.getrandbits(64):x}": rng.random() for _ in range(500)}
            client.post(predict, json={"features": x})
        after = client.post("/models/phishing/snapshots", headers=admin).json()["bytes"]
        out["snapshot_bytes_before_predictions"] = before
        out["snapshot_bytes_after_predictions"] = after
        for mb in (20, 50):
            body = b'{"features": {"x": "' + b"a" * (mb * 1_000_000) + b'"}}'
            out[f"predict_{mb}MB"] = status(client, predict, body)
        invalid = orjson.dumps({"features": {"x": ["a" * 100] * 50_000}})  # 5 MB, a list
        answer = client.post(predict, content=invalid,
                             headers={"content-type": "application/json"})  # fmt: skip
        out["invalid_5MB_status"] = answer.status_code
        out["invalid_5MB_answer_bytes"] = len(answer.content)
    finally:
        node.stop()
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        kafka = broker(tmp)
        try:
            results = {
                "two_poison_events": poison_run(kafka.bootstrap, tmp, "two", two_poison(), 200),
                "phishing_25_poison": poison_run(
                    kafka.bootstrap, tmp, "phishing", phishing_with_25(), 1250
                ),
                "http": http_run(kafka.bootstrap, tmp),
            }
        finally:
            kafka.stop()
    print(json.dumps(results, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "robustness.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
