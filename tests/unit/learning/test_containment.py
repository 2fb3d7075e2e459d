"""No input can crash learning, lose an event or grow a model (in memory; the same promise is
proven through Kafka in tests/integration/test_poison.py)."""

from __future__ import annotations

import pickle
import random
from typing import Any

import orjson
import pytest
from river import base, datasets, evaluate, linear_model, metrics, preprocessing

from streams.learning.errors import InvalidEvent
from streams.learning.events import Event
from streams.learning.model import Limits, OnlineModel
from streams.learning.records import DeadLetter
from streams.learning.registry import ModelRegistry
from streams.learning.spec import ModelSpec

LINEAR = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
POISON: list[Any] = [None, "abc", "0.5", "", float("nan"), 1e300, -1e200]


def registry_for(**spec: Any) -> ModelRegistry:
    limits = Limits(dedupe_seconds=1e9, pending_seconds=1e9)
    return ModelRegistry({"m": ModelSpec(name="m", **spec)}, limits, max_event_bytes=1 << 24)


def phishing_with_poison(seed: int) -> tuple[list[dict[str, Any]], int]:
    """Phishing's 1,250 events with poison events interleaved: (events, number of poison)."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    n_poison = 0
    for i, (x, y) in enumerate(datasets.Phishing()):
        events.append({"event_id": f"good-{i}", "model": "m", "features": x, "label": y})
        if i % 50 == 7:
            bad = dict(x)
            bad[rng.choice(sorted(x))] = POISON[n_poison % len(POISON)]
            events.append({"event_id": f"bad-{i}", "model": "m", "features": bad, "label": y})
            n_poison += 1
    return events, n_poison


def river_phishing() -> dict[str, float]:
    metric = metrics.Accuracy() + metrics.ROCAUC()
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    evaluate.progressive_val_score(datasets.Phishing(), model, metric)
    return {type(m).__name__: m.get() for m in metric}


@pytest.mark.parametrize("batch", [1, 40])
def test_poison_is_dead_lettered_and_the_good_events_match_river(batch: int) -> None:
    registry = registry_for(task="binary", pipeline=LINEAR, preprocess="none",
                            metrics=("Accuracy", "ROCAUC"))  # fmt: skip
    events, n_poison = phishing_with_poison(seed=1)
    dead: list[DeadLetter] = []
    for offset, start in enumerate(range(0, len(events), batch)):
        raw = orjson.dumps(events[start : start + batch])
        out = registry.handle_events(raw, topic="events", partition=0, offset=offset, now=0.0)
        dead += out.dead_letters
    model = registry.get("m")
    assert model.n_learned == 1250
    assert len(dead) == n_poison == model.counters.n_dead_letters
    assert model.counters.n_model_errors == 0  # every poison event was refused before River saw it
    served = model.metrics.cumulative()
    for name, value in river_phishing().items():
        assert served[name] == pytest.approx(value, abs=1e-9)
    reasons = " ".join(d.error for d in dead)
    assert "is null, but StandardScaler | LogisticRegression needs a number" in reasons
    assert "is the string 'abc', but StandardScaler | LogisticRegression needs a number" in reasons
    assert "larger in magnitude than 1e+100" in reasons


def test_the_sentence_names_the_model_feature_and_fix() -> None:
    model = OnlineModel(ModelSpec(name="m", task="binary", pipeline=LINEAR, preprocess="none"),
                        Limits())  # fmt: skip
    with pytest.raises(InvalidEvent) as caught:
        model.process(Event("e", "m", {"popup_window": None}, True), now=0.0)
    assert str(caught.value) == (
        "features.popup_window is null, but StandardScaler | LogisticRegression needs a number;"
        ' set preprocess = "auto" to impute missing values'
    )
    assert caught.value.field == "features.popup_window"
    assert model.counters.n_events == 0


def test_a_refused_event_leaves_the_model_byte_for_byte() -> None:
    model = OnlineModel(ModelSpec(name="m", task="binary", pipeline=LINEAR, preprocess="none"),
                        Limits())  # fmt: skip
    for i, (x, y) in enumerate(datasets.Phishing().take(50)):
        model.process(Event(str(i), "m", x, y), now=0.0)
    before = pickle.dumps(model.learning_state())
    # New names first, then a bad value: the new names must not be remembered either.
    with pytest.raises(InvalidEvent):
        model.process(Event("x", "m", {"new_a": 1.0, "new_b": 2.0, "empty_title": "yes"}, True),
                      now=0.0)  # fmt: skip
    assert pickle.dumps(model.learning_state()) == before


def test_a_feature_changing_kind_is_refused_where_the_tree_would_raise() -> None:
    registry = registry_for(task="binary", pipeline="tree.HoeffdingTreeClassifier()",
                            preprocess="none")  # fmt: skip
    rows = [{"event_id": str(i), "model": "m", "features": {"a": i / 7, "s": "x"},
             "label": i % 2 == 0} for i in range(30)]  # fmt: skip
    registry.handle_events(orjson.dumps(rows), topic="events", partition=0, offset=0, now=0.0)
    bad = {"event_id": "b", "model": "m", "features": {"a": "text", "s": "y"}, "label": True}
    out = registry.handle_events(orjson.dumps(bad), topic="events", partition=0, offset=1, now=0.0)
    assert "learned it as a number" in out.dead_letters[0].error
    assert registry.get("m").n_learned == 30


class HalfwayFails(base.Transformer):  # type: ignore[misc]
    """A stage that updates part of its state, then raises on the feature ``bomb``: a
    failure inside River that no check of the input could foresee."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def learn_one(self, x: dict[str, Any]) -> None:
        for name in sorted(x):
            self.counts[name] = self.counts.get(name, 0) + 1
            if name == "bomb":
                raise ArithmeticError("the bomb went off halfway")

    def transform_one(self, x: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in x.items() if k != "bomb"}


@pytest.mark.parametrize("batch", [1, 25])
def test_a_step_river_raises_in_is_rewound_exactly(batch: int) -> None:
    def registry() -> ModelRegistry:
        made = registry_for(task="binary", pipeline=LINEAR, preprocess="none",
                            metrics=("Accuracy", "ROCAUC"), drift=("ADWIN()",))  # fmt: skip
        model = made.get("m")
        model.estimator = HalfwayFails() | model.estimator
        return made

    good = [{"event_id": f"g{i}", "model": "m", "features": x, "label": y}
            for i, (x, y) in enumerate(datasets.Phishing().take(300))]  # fmt: skip
    poisoned = list(good)
    for at in (0, 41, 42, 150, 303):
        x = {**good[at % 300]["features"], "bomb": 1.0}
        poisoned.insert(at, {"event_id": f"bomb{at}", "model": "m", "features": x, "label": True})
    clean, dirty = registry(), registry()
    dead = []
    for events, target in ((good, clean), (poisoned, dirty)):
        for offset, start in enumerate(range(0, len(events), batch)):
            raw = orjson.dumps(events[start : start + batch])
            out = target.handle_events(raw, topic="events", partition=0, offset=offset, now=0.0)
            dead += out.dead_letters
    a, b = clean.get("m"), dirty.get("m")
    assert b.counters.n_model_errors == 5 == len(dead) == b.counters.n_dead_letters
    assert "raised ArithmeticError learning from event 'bomb0'" in dead[0].error
    assert "left as it was before this event" in dead[0].error
    assert (a.n_learned, a.counters.n_events) == (b.n_learned, b.counters.n_events) == (300, 300)
    # Step by step: a pipeline unpickled once shares its key strings differently, which
    # changes the pickle's bytes but not its state.
    for step_a, step_b in zip(a.estimator.steps.values(), b.estimator.steps.values(),
                              strict=True):  # fmt: skip
        assert pickle.dumps(step_a) == pickle.dumps(step_b)
    assert a.drift.state() == b.drift.state()
    assert b.metrics.cumulative() == a.metrics.cumulative()
    assert b.metrics.rolling() == a.metrics.rolling()


def test_predictions_never_change_the_model() -> None:
    model = OnlineModel(ModelSpec(name="m", task="binary", pipeline=LINEAR, preprocess="none"),
                        Limits())  # fmt: skip
    for i, (x, y) in enumerate(datasets.Phishing().take(200)):
        model.process(Event(str(i), "m", x, y), now=0.0)
    before = pickle.dumps(model.learning_state())
    rng = random.Random(0)
    for _ in range(0, 100_000, 500):
        x = {f"f{rng.getrandbits(64):x}": rng.random() for _ in range(500)}
        x["popup_window"] = 0.3
        _, proba = model.predict(x)
        assert proba is not None
    assert pickle.dumps(model.learning_state()) == before
    with pytest.raises(InvalidEvent) as caught:
        model.predict({"popup_window": "abc"})
    assert caught.value.field == "features.popup_window"


def test_http_and_kafka_agree_on_non_finite_numbers() -> None:
    model = OnlineModel(ModelSpec(name="m", task="binary", pipeline=LINEAR, preprocess="none"),
                        Limits())  # fmt: skip
    model.process(Event("e", "m", {"a": 1.0}, True), now=0.0)
    with pytest.raises(InvalidEvent, match=r"features\.a is null"):
        model.predict({"a": float("nan")})
    auto = OnlineModel(ModelSpec(name="m", task="binary", pipeline=LINEAR), Limits())
    auto.process(Event("e", "m", {"a": 1.0}, True), now=0.0)
    assert auto.predict({"a": float("inf")}) == auto.predict({"a": None})


def test_a_flood_of_unique_names_keeps_memory_flat() -> None:
    limits = Limits(dedupe_size=1_000, dedupe_seconds=1e9, pending_seconds=1e9)
    spec = ModelSpec(name="m", task="binary", pipeline=LINEAR, max_features=1_000)
    registry = ModelRegistry({"m": spec}, limits, max_event_bytes=1 << 24)
    names = (f"n{i}" for i in range(1_000_000))

    def feed(n_events: int, offset: int) -> int:
        for j in range(n_events):
            x = {next(names): 1.0 for _ in range(100)}
            raw = orjson.dumps({"event_id": f"{offset}-{j}", "model": "m", "features": x,
                                "label": j % 2 == 0})  # fmt: skip
            registry.handle_events(raw, topic="events", partition=0, offset=offset + j, now=0.0)
        return len(pickle.dumps(registry.get("m").learning_state()))

    after_200k_names = feed(2_000, 0)
    after_1m_names = feed(8_000, 2_000)
    model = registry.get("m")
    assert len(model.guard) == 1_000
    assert model.counters.n_features_dropped == 1_000_000 - 1_000
    assert model.state()["n_features_dropped"] == 1_000_000 - 1_000
    assert model.n_learned == 10_000
    # The model holds 1,000 names whatever arrives: 800,000 more names would add megabytes;
    # what grows a little is bounded (the sampled history, longer event ids).
    assert after_1m_names < after_200k_names * 1.2, (after_200k_names, after_1m_names)


def test_a_restored_model_takes_the_features_it_learned_before() -> None:
    spec = ModelSpec(name="m", task="binary", pipeline=LINEAR, preprocess="none")
    model = OnlineModel(spec, Limits())
    rows = list(datasets.Phishing().take(40))
    for i, (x, y) in enumerate(rows[:20]):
        model.process(Event(str(i), "m", x, y), now=0.0)
    restored = OnlineModel(spec, Limits())
    # A snapshot is a pickle: the kinds come back as equal strings, not the same objects.
    restored.restore_state(pickle.loads(pickle.dumps(model.snapshot_state({}))))  # noqa: S301
    for i, (x, y) in enumerate(rows[20:], start=20):
        restored.process(Event(str(i), "m", x, y), now=0.0)
    assert restored.n_learned == 40
