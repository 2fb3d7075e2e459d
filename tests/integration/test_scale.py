"""Several nodes in one group: any node answers for every model, models move exactly once."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import threading
import time
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from river import datasets, forest, linear_model, naive_bayes, preprocessing, tree

from streams.learning.partitioning import partition_for
from tests.integration.conftest import NodeProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOKEN = "scale-admin-token"
PARTITIONS = 6
GROUP_ENV = {
    "STREAMLEARN_ADMIN_TOKEN": TOKEN,
    "STREAMLEARN_SNAPSHOT_KEY": "shared-group-key",
    "STREAMLEARN_TOPIC_PARTITIONS": str(PARTITIONS),
}

#: One model per partition (murmur2 of the name): two nodes hold three each, three hold two.
PIPELINES: dict[str, tuple[str, Any]] = {
    "clicks": ("preprocessing.StandardScaler() | linear_model.LogisticRegression()",
               lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression()),
    "prices": ("tree.HoeffdingTreeClassifier()", lambda: tree.HoeffdingTreeClassifier()),
    "ctr": ("naive_bayes.GaussianNB()", lambda: naive_bayes.GaussianNB()),
    "views": ("preprocessing.StandardScaler() | linear_model.LogisticRegression(l2=0.01)",
              lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression(l2=0.01)),
    "fraud": ("tree.HoeffdingTreeClassifier(grace_period=50)",
              lambda: tree.HoeffdingTreeClassifier(grace_period=50)),
    "churn": ("preprocessing.MinMaxScaler() | linear_model.Perceptron()",
              lambda: preprocessing.MinMaxScaler() | linear_model.Perceptron()),
}  # fmt: skip
NAMES = list(PIPELINES)
MODELS = "".join(
    f'[models.{name}]\ntask = "binary"\npipeline = "{pipeline}"\npreprocess = "none"\n'
    "snapshot_every = 700\n\n"
    for name, (pipeline, _) in PIPELINES.items()
)


def river_model(name: str) -> Any:
    return PIPELINES[name][1]()


def rows(name: str, n: int) -> list[tuple[dict[str, Any], int]]:
    seed = NAMES.index(name) + 1
    return list(itertools.islice(datasets.synth.Agrawal(seed=seed), n))


def batches(name: str, data: list[tuple[dict[str, Any], int]], size: int) -> list[bytes]:
    events = [
        {"event_id": f"{name}-{i}", "model": name, "features": x, "label": y}
        for i, (x, y) in enumerate(data)
    ]
    return [orjson.dumps(events[i : i + size]) for i in range(0, len(events), size)]


def paced_feed(
    bootstrap: str, topic: str, data: dict[str, list[bytes]], seconds: float,
    **client_options: Any,
) -> Any:  # fmt: skip
    """Send every model's messages round-robin, spread over about ``seconds``."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all",
                                    enable_idempotence=True, **client_options)  # fmt: skip
        await producer.start()
        try:
            rounds = max(len(v) for v in data.values())
            for i in range(rounds):
                for name, values in data.items():
                    if i < len(values):
                        await producer.send_and_wait(topic, values[i], key=name.encode())
                await asyncio.sleep(seconds / rounds)
        finally:
            await producer.stop()

    thread = threading.Thread(target=lambda: asyncio.run(send()))
    thread.start()
    return thread


def owners(node: NodeProcess) -> dict[str, str]:
    return {m["name"]: m["owner"] for m in node.get("/models").json() if m["status"] == "live"}


def wait_until(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, ValueError, KeyError):  # a node restarting answers nothing
            time.sleep(0.2)
            continue
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def spread_over(nodes: list[NodeProcess], timeout: float = 60.0) -> dict[str, str]:
    """Wait until every model is live on one of ``nodes`` and each node holds some."""
    urls = {n.url for n in nodes}

    def spread() -> bool:
        seen = owners(nodes[0])
        return set(seen) == set(NAMES) and set(seen.values()) == urls

    wait_until(spread, timeout, f"the models to spread over {sorted(urls)}")
    return owners(nodes[0])


def wire_key(label: Any) -> str:
    """A class as JSON names it: ``True`` -> ``"true"``."""
    return str(label).lower() if isinstance(label, bool) else str(label)


def assert_serves_as(
    node: NodeProcess, name: str, reference: Any, probes: list[dict[str, Any]]
) -> None:
    """``name``, served by ``node``, gives ``reference``'s probabilities on ``probes`` to 1e-9."""
    served = node.post(f"/models/{name}/predict", json={"instances": probes}).json()
    worst = max(
        abs(out["proba"][wire_key(label)] - p)
        for x, out in zip(probes, served["predictions"], strict=True)
        for label, p in reference.predict_proba_one(x).items()
    )
    assert worst < 1e-9, (name, worst)


def assert_exact(node: NodeProcess, data: dict[str, list[tuple[dict[str, Any], int]]]) -> None:
    """Every model learned each of its events once and predicts as uninterrupted River."""
    probes = [x for x, _ in itertools.islice(datasets.synth.Agrawal(seed=99), 100)]
    for name, labelled in data.items():
        state = node.wait_for(name, "n_learned", len(labelled), timeout=120)
        assert state["n_duplicates"] == 0
        reference = river_model(name)
        for x, y in labelled:
            reference.learn_one(x, y)
        assert_serves_as(node, name, reference, probes)


def test_two_nodes_answer_every_route_for_every_model(start_node: Any) -> None:
    assert sorted(partition_for(n, PARTITIONS) for n in NAMES) == list(range(PARTITIONS))
    a = start_node(MODELS, **GROUP_ENV)
    b = start_node(MODELS, join=a, **GROUP_ENV)
    owner = spread_over([a, b])
    bootstrap = a.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    data = {name: rows(name, 300) for name in NAMES}
    paced_feed(bootstrap, a.topic("events"), {n: batches(n, d, 50) for n, d in data.items()},
               seconds=0).join()  # fmt: skip
    auth = {"Authorization": f"Bearer {TOKEN}"}
    taken: dict[str, int] = {}  # a snapshot of each model at 300 learned
    for node in (a, b):
        for name in NAMES:
            node.wait_for(name, "n_learned", 300)
            answers = [
                node.get(f"/models/{name}"),
                node.get(f"/models/{name}/metrics"),
                node.get(f"/models/{name}/drift"),
                node.get(f"/models/{name}/history"),
                node.get(f"/models/{name}/candidates"),
                node.post(f"/models/{name}/predict", json={"features": data[name][0][0]}),
                node.get(f"/models/{name}/snapshots"),
            ]
            created = node.post(f"/models/{name}/snapshots", headers=auth)
            assert created.status_code == 201, created.text
            taken[name] = created.json()["version"]
            for response in [*answers, created]:
                assert response.status_code == 200 or response is created, response.text
                assert response.headers["x-streamlearn-node"] == owner[name]
                relayed = response.headers.get("x-streamlearn-forwarded-by")
                assert relayed == (None if node.url == owner[name] else node.url)
            assert answers[0].json()["owner"] == owner[name]
            assert answers[1].json()["n_learned"] == 300
            # An admin route relayed keeps its guard: no token, no snapshot.
            assert node.post(f"/models/{name}/snapshots").status_code == 401
        listed = node.get("/models").json()
        assert [m["name"] for m in listed] == NAMES
        assert all(m["status"] == "live" and m["n_learned"] == 300 for m in listed)
        assert {m["name"]: m["owner"] for m in listed} == owner

    # events and labels are co-partitioned: each node holds the same partitions of both.
    for node in (a, b):
        ready = node.get("/readyz").json()
        held = ready["partitions"]
        assert sorted(p.split(":")[-1] for p in held if ":events:" in f":{p}") == sorted(
            p.split(":")[-1] for p in held if ":labels:" in f":{p}"
        )
        assert set(ready["models"]) == {n for n, url in owner.items() if url == node.url}
        text = node.get("/metrics").text
        for name in NAMES:
            mine = owner[name] == node.url
            assert (
                f'streamlearn_model_owned{{model="{name}",node="{node.url}"}} 1.0' in text
            ) == mine
        assert "streamlearn_consumer_lag{" in text and "streamlearn_group_members 2.0" in text

    # A label sent to either node reaches the node holding the pending prediction.
    unlabelled = [{"event_id": f"late-{name}", "model": name, "features": data[name][1][0]}
                  for name in NAMES]  # fmt: skip
    assert a.post("/events", json=unlabelled).status_code == 202
    for name in NAMES:
        b.wait_for(name, "n_pending_labels", 1)
    labels = [{"event_id": f"late-{name}", "model": name, "label": True} for name in NAMES]
    assert b.post("/labels", json=labels).status_code == 202
    for name in NAMES:
        a.wait_for(name, "n_learned", 301)

    # A rollback asked of the other node is done by the owner, and survives the model moving.
    name = next(n for n, url in owner.items() if url == a.url)
    rolled = b.post(f"/models/{name}/snapshots/{taken[name]}/restore", headers=auth)
    assert rolled.status_code == 200 and rolled.json()["n_learned"] == 300, rolled.text
    assert rolled.headers["x-streamlearn-node"] == a.url
    a.stop()
    spread_over([b])
    moved = b.get(f"/models/{name}").json()
    assert moved["owner"] == b.url and moved["n_learned"] == 300
    assert moved["model_version"] == rolled.json()["model_version"]


def test_kill_9_one_of_two_nodes_mid_stream_loses_and_doubles_nothing(start_node: Any) -> None:
    a = start_node(MODELS, **GROUP_ENV)
    b = start_node(MODELS, join=a, **GROUP_ENV)
    owner = spread_over([a, b])
    data = {name: rows(name, 3_000) for name in NAMES}
    feed = paced_feed(a.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"], a.topic("events"),
                      {n: batches(n, d, 10) for n, d in data.items()}, seconds=15,
                      **a.client_options)  # fmt: skip
    on_b = [name for name, url in owner.items() if url == b.url]
    wait_until(lambda: all(a.get(f"/models/{n}").json()["n_learned"] > 600 for n in on_b), 60,
               "node b to learn a while")  # fmt: skip
    b.kill()
    moved = spread_over([a], timeout=60)
    assert set(moved.values()) == {a.url}
    feed.join()
    assert_exact(a, data)


def test_a_third_node_joins_then_one_leaves_and_models_move_exactly(start_node: Any) -> None:
    a = start_node(MODELS, **GROUP_ENV)
    b = start_node(MODELS, join=a, **GROUP_ENV)
    spread_over([a, b])
    data = {name: rows(name, 3_000) for name in NAMES}
    feed = paced_feed(a.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"], a.topic("events"),
                      {n: batches(n, d, 10) for n, d in data.items()}, seconds=20)  # fmt: skip
    wait_until(lambda: min(m["n_learned"] for m in a.get("/models").json()) > 400, 60,
               "the stream to be under way")  # fmt: skip
    c = start_node(MODELS, join=a, **GROUP_ENV)
    with_c = spread_over([a, b, c])
    learned_then = {m["name"]: m["n_learned"] for m in c.get("/models").json()}
    assert max(learned_then.values()) < 3_000, "the stream ended before the third node came"
    a.stop()  # a clean leave: its models are handed over through the snapshots topic
    spread_over([b, c])
    feed.join()
    assert_exact(c, data)
    assert with_c  # (for the failure message when the spread never happened)


ARF = """
[models.forest]
task = "binary"
pipeline = "forest.ARFClassifier(seed=1, n_models=5)"
preprocess = "none"
"""


def test_a_large_snapshot_travels_whole_through_the_topic_to_another_node(
    start_node: Any,
) -> None:
    a = start_node(ARF, **GROUP_ENV)
    data = {"forest": rows("clicks", 1_500)}
    paced_feed(a.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"], a.topic("events"),
               {"forest": batches("forest", data["forest"], 100)}, seconds=0,
               **a.client_options).join()  # fmt: skip
    a.wait_for("forest", "n_learned", 1_500)
    a.stop()  # a clean stop hands the model over through the snapshots topic
    shutil.rmtree(a.workdir / "state")  # nothing of a's is left to point at
    b = start_node(ARF, join=a, **GROUP_ENV)
    state = b.get("/models/forest").json()
    assert state["owner"] == b.url and state["n_learned"] == 1_500
    # b learned nothing itself: its only snapshot is the copy of the one a published, whole.
    (copy,) = b.get("/models/forest/snapshots").json()
    assert copy["bytes"] > 1_048_576, copy  # over Kafka's default message size
    events_key = next(k for k in copy["offsets"] if ".events:" in k)
    assert copy["offsets"][events_key] == 15  # 15 messages of 100 events
    reference = forest.ARFClassifier(seed=1, n_models=5)
    for x, y in data["forest"]:
        reference.learn_one(x, y)
    probes = [x for x, _ in itertools.islice(datasets.synth.Agrawal(seed=99), 50)]
    served = b.post("/models/forest/predict", json={"instances": probes}).json()["predictions"]
    for x, out in zip(probes, served, strict=True):
        for label, p in reference.predict_proba_one(x).items():
            assert out["proba"][wire_key(label)] == pytest.approx(p, abs=1e-9)
