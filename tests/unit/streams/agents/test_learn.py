"""The learn loop outside a broker: takes of stand-in events, published, redelivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter

from streams.agents import learn
from streams.agents.learn import Learner
from streams.gate import RequestGate
from streams.learning.records import Prediction
from streams.learning.registry import ModelRegistry, Outcome
from streams.learning.spec import ModelSpec
from streams.rebalance import Lifecycle
from streams.topics import CONTRACT_TOPICS, Topics
from tests.unit.streams.factories import (
    RecordingFaustTopic,
    StandInTopic,
    event,
    lifecycle,
    registry,
)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: list[tuple[str, bytes]] | None = None

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class StandInEvent:
    """What Faust's ``take_events`` yields: the value and its message."""

    value: bytes
    message: Message


def events(values: list[bytes], start: int = 0, topic: str = "ev") -> list[StandInEvent]:
    return [StandInEvent(v, Message(topic, 0, start + i, b"m")) for i, v in enumerate(values)]


class StandInStream:
    """A Faust stream whose takes are given."""

    def __init__(self, *takes: list[StandInEvent]) -> None:
        self.takes = takes
        self.app: Any = None

    async def take_events(self, max_: int, within: float) -> AsyncIterator[list[StandInEvent]]:
        for take in self.takes:
            yield take


class RecordingGate(RequestGate):
    """A gate that notes, at each pause, how many messages ``topic`` had been sent."""

    def __init__(self, topic: RecordingFaustTopic) -> None:
        super().__init__()
        self.topic = topic
        self.sent_at_pause: list[int] = []

    async def pause(self) -> None:
        self.sent_at_pause.append(len(self.topic.sent))
        await super().pause()


class Harness:
    """A learner over ``reg`` with recording topics, seeks and a crash counter."""

    def __init__(self, reg: ModelRegistry, path: Path) -> None:
        self.registry = reg
        self.topics = Topics(*(RecordingFaustTopic() for _ in CONTRACT_TOPICS))
        self.lifecycle: Lifecycle = lifecycle(reg, path)
        self.gate = RecordingGate(self.topics.predictions_topic)
        self.seeks: list[tuple[Any, int]] = []
        self.prometheus = CollectorRegistry()
        self.crashes = Counter("crashes", "test", registry=self.prometheus)
        self.learner = Learner(self.topics, self.lifecycle, self.gate, self.seek, self.crashes,
                               max_event_bytes=10_000)  # fmt: skip

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))

    def n_crashes(self) -> float | None:
        return self.prometheus.get_sample_value("crashes_total")

    def sent(self, name: str) -> list[Any]:
        topic: RecordingFaustTopic = getattr(self.topics, f"{name}_topic")
        return [orjson.loads(value) for _, value in topic.sent]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(registry(), tmp_path)


async def test_a_take_is_learned_and_its_predictions_published_in_one_message(
    harness: Harness,
) -> None:
    stream = StandInStream(events([event(i) for i in range(5)]))
    await harness.learner.consume(
        stream, harness.registry.iter_events, "learn", harness.topics.events_topic
    )
    assert harness.registry.get("m").n_learned == 5
    (message,) = harness.sent("predictions")  # one take, one model: one message
    assert [p["event_id"] for p in message] == ["0", "1", "2", "3", "4"]
    assert harness.registry.positions == {"ev:0": 5}


async def test_bad_data_is_a_dead_letter_not_a_crash(harness: Harness) -> None:
    stream = StandInStream(events([b"{", event(1)]))
    await harness.learner.consume(
        stream, harness.registry.iter_events, "learn", harness.topics.events_topic
    )
    (letter,) = harness.sent("dead_letters")
    assert letter["offset"] == 0 and letter["topic"] == "ev"
    assert harness.registry.get("m").n_learned == 1
    assert harness.n_crashes() == 0 and harness.seeks == []


async def test_a_failing_take_is_counted_and_redelivered_from_its_first_message(
    harness: Harness,
) -> None:
    calls = 0

    def failing(value: bytes, **where: Any) -> Iterator[Outcome | None]:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")  # a broker or disk failure, never data
        yield from harness.registry.iter_events(value, **where)

    first, second = events([event(i) for i in range(3)], start=7), events([event(3)], start=10)
    await harness.learner.consume(
        StandInStream(first, second), failing, "learn", harness.topics.events_topic
    )
    assert harness.n_crashes() == 1
    assert harness.seeks == [(("ev", 0), 7)]  # back to the take's first message
    assert harness.registry.get("m").n_learned == 2  # the event before the failure, and 10


def _slow(value: bytes, **where: Any) -> Iterator[Outcome | None]:
    yield None  # the slice ran out inside this message
    yield Outcome(predictions=[Prediction("e1", "m", 1, 1.0, None)])


async def test_a_slice_that_runs_out_flushes_then_yields_to_requests(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learn, "FLUSH_SECONDS", 0.0)
    await harness.learner.learn_take(events([b"{}", b"{}"]), _slow, harness.topics.events_topic)
    # Each pause comes after a flush: what was predicted before it is out already.
    assert harness.gate.sent_at_pause[:2] == [0, 1]
    assert len(harness.sent("predictions")) == 2


async def test_predictions_are_flushed_between_slices_at_most_every_flush_seconds(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learn, "FLUSH_SECONDS", 60.0)
    await harness.learner.learn_take(events([b"{}", b"{}"]), _slow, harness.topics.events_topic)
    assert harness.gate.sent_at_pause[:2] == [0, 0]
    (message,) = harness.sent("predictions")  # the take's end flushes, once
    assert len(message) == 2


async def test_a_due_snapshot_is_taken_and_published_between_messages(tmp_path: Path) -> None:
    spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()",
                     snapshot_every=3)  # fmt: skip
    harness = Harness(registry(m=spec), tmp_path)
    for take in (events([event(i) for i in range(4)]), events([event(i) for i in range(4, 7)], 4)):
        await harness.learner.learn_take(
            take, harness.registry.iter_events, harness.topics.events_topic
        )
        await harness.lifecycle.settled()  # written by a child process, then published
    topic = harness.lifecycle.topic
    assert isinstance(topic, StandInTopic)
    assert [info.offsets["ev:0"] for info in topic.infos] == [3, 6]
    assert harness.lifecycle.store.versions("m") == [1, 2]
    state, info = harness.lifecycle.store.read("m", 1)
    # The state as it was at the fork, though the 4th event was learned right after it.
    assert state["counters"].n_learned == 3 and info.offsets["ev:0"] == 3
    assert harness.registry.get("m").n_learned == 7 and harness.n_crashes() == 0


async def test_a_snapshot_due_while_another_is_written_comes_after_it(tmp_path: Path) -> None:
    spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()",
                     snapshot_every=3)  # fmt: skip
    harness = Harness(registry(m=spec), tmp_path)
    await harness.learner.learn_take(
        events([event(i) for i in range(7)]),
        harness.registry.iter_events,
        harness.topics.events_topic,
    )
    await harness.lifecycle.settled()
    topic = harness.lifecycle.topic
    assert isinstance(topic, StandInTopic)
    assert [info.offsets["ev:0"] for info in topic.infos] == [3, 6]
    assert harness.lifecycle.store.versions("m") == [1, 2]


async def test_misplaced_messages_are_written_to_their_models_partition_together(
    tmp_path: Path,
) -> None:
    harness = Harness(registry(partitions=4), tmp_path)
    right = harness.registry.partition_of("m")
    wrong = (right + 1) % 4
    take = [StandInEvent(event(i), Message("ev", wrong, 7 + i, b"other")) for i in range(3)]
    await harness.learner.learn_take(take, harness.registry.iter_events,
                                     harness.topics.events_topic)  # fmt: skip
    topic: RecordingFaustTopic = harness.topics.events_topic
    # The take's three one-event messages travel as one array, in their order.
    [(key, value)] = topic.sent
    assert key == b"m" and value == b"[" + b",".join(event(i) for i in range(3)) + b"]"
    assert topic.placed == [(right, [("streamlearn-rerouted-from", f"ev:{wrong}:7-9".encode())])]
    assert harness.registry.get("m").n_learned == 0 and not harness.sent("dead_letters")
    # The copy, as the consumer of the right partition reads it: learned and counted.
    copy = StandInEvent(value, Message("ev", right, 0, key, topic.placed[0][1]))
    await harness.learner.learn_take([copy], harness.registry.iter_events,
                                     harness.topics.events_topic)  # fmt: skip
    counters = harness.registry.get("m").counters
    assert counters.n_learned == 3 and counters.n_rerouted == 3


class Consumer:
    """Faust's consumer as the learner reads it: the partition ends the broker reported."""

    def __init__(self, end: int) -> None:
        self.end = end

    def highwater(self, tp: Any) -> int:
        return self.end


async def test_predictions_wait_while_more_messages_are_on_the_broker(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learn, "FLUSH_SECONDS", 0.02)
    harness.learner.flush()  # just written: the next take's are due in 20 ms
    behind = Consumer(end=100).highwater
    await harness.learner.learn_take(events([event(0), event(1)]), harness.registry.iter_events,
                                     harness.topics.events_topic, behind)  # fmt: skip
    await harness.learner.learn_take(events([event(2)], start=2), harness.registry.iter_events,
                                     harness.topics.events_topic, behind)  # fmt: skip
    assert harness.sent("predictions") == []
    await asyncio.sleep(0.05)  # written once due, though no take came to do it
    (message,) = harness.sent("predictions")
    assert [p["event_id"] for p in message] == ["0", "1", "2"]


async def test_a_take_that_reaches_the_end_of_its_partition_writes_its_predictions(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learn, "FLUSH_SECONDS", 60.0)
    caught_up = Consumer(end=2).highwater  # offsets 0 and 1: nothing after them
    await harness.learner.learn_take(events([event(0), event(1)]), harness.registry.iter_events,
                                     harness.topics.events_topic, caught_up)  # fmt: skip
    (message,) = harness.sent("predictions")
    assert len(message) == 2


async def test_an_agent_that_stops_writes_the_predictions_it_holds(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(learn, "FLUSH_SECONDS", 60.0)
    stream = StandInStream(events([event(0)]))
    stream.app = SimpleNamespace(consumer=Consumer(end=100))  # as a Faust stream has
    await harness.learner.consume(
        stream, harness.registry.iter_events, "learn", harness.topics.events_topic
    )
    (message,) = harness.sent("predictions")
    assert message["event_id"] == "0"
