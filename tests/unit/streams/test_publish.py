"""Predictions are grouped per model and never written in a message over the limit."""

from __future__ import annotations

import orjson

from streams.agents.publish import MESSAGE_LIMIT, Publisher
from streams.learning.records import Prediction
from streams.learning.registry import Outcome


class RecordingTopic:
    """Stands in for a Faust topic's buffer: records what would be produced."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []

    def send_soon(self, *, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


class Topics:
    def __init__(self) -> None:
        self.predictions_topic = RecordingTopic()
        self.drift_topic = RecordingTopic()
        self.dead_letters_topic = RecordingTopic()


def prediction(model: str, i: int) -> Prediction:
    return Prediction(
        f"{i:06d}" + "x" * 200, model, 1, True, "2026-01-01T00:00:00", {True: 0.7, False: 0.3}
    )


def test_predictions_are_grouped_per_model_and_split_under_the_limit() -> None:
    topics = Topics()
    publisher = Publisher(topics)  # type: ignore[arg-type]
    publisher.add(Outcome(predictions=[prediction("a", i) for i in range(6_000)]), b"a")
    publisher.add(Outcome(predictions=[prediction("b", 0)]), b"b")
    publisher.flush()
    sent = topics.predictions_topic.sent
    assert all(len(value) <= MESSAGE_LIMIT for _, value in sent)
    a = [orjson.loads(v) for k, v in sent if k == b"a"]
    assert len(a) >= 2 and all(isinstance(m, list) for m in a)
    ids = [p["event_id"][:6] for m in a for p in m]
    assert ids == [f"{i:06d}" for i in range(6_000)]  # all of them, in order
    (b,) = [orjson.loads(v) for k, v in sent if k == b"b"]
    assert b["model"] == "b" and b["proba"] == {"true": 0.7, "false": 0.3}
