"""Challengers are scored exactly as River scores each pipeline alone; promotion follows."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest
from river import datasets, evaluate, linear_model, metrics, naive_bayes, preprocessing, tree

from streams.learning.errors import UnknownCandidate
from streams.learning.model import Limits, OnlineModel
from streams.learning.records import Promotion
from streams.learning.registry import ModelRegistry
from streams.learning.snapshots import SnapshotStore
from streams.learning.spec import ModelSpec

LR = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"


def feed(registry: ModelRegistry, rows: Any) -> list[Promotion]:
    promotions: list[Promotion] = []
    for i, (x, y) in enumerate(rows):
        raw = orjson.dumps({"event_id": str(i), "model": "m", "features": x, "label": y})
        out = registry.handle_events(raw, topic="e", partition=0, offset=i, now=0.0)
        promotions += out.promotions
    return promotions


def registry(**spec: Any) -> ModelRegistry:
    model = ModelSpec(name="m", task="binary", preprocess="none", **spec)
    return ModelRegistry({"m": model}, Limits(), max_event_bytes=10**6)


def river_scores(model: Any) -> dict[str, float]:
    metric = metrics.Accuracy() + metrics.ROCAUC()
    evaluate.progressive_val_score(datasets.Phishing(), model, metric)
    return {type(m).__name__: m.get() for m in metric}


def test_three_candidates_each_equal_river_alone() -> None:
    reg = registry(
        pipeline=LR,
        metrics=("Accuracy", "ROCAUC"),
        challengers={"tree": "tree.HoeffdingTreeClassifier()", "nb": "naive_bayes.GaussianNB()"},
    )
    feed(reg, datasets.Phishing())
    board = {c["name"]: c for c in reg.get("m").leaderboard()}
    expected = {
        "default": river_scores(preprocessing.StandardScaler() | linear_model.LogisticRegression()),
        "tree": river_scores(tree.HoeffdingTreeClassifier()),
        "nb": river_scores(naive_bayes.GaussianNB()),
    }
    for name, scores in expected.items():
        for metric, value in scores.items():
            assert board[name]["cumulative"][metric] == pytest.approx(value, abs=1e-12), name
    assert board["default"]["role"] == "champion"
    assert board["tree"]["n_learned"] == 1250
    assert board["tree"]["microseconds_per_event"] > 0 and board["tree"]["memory_bytes"] > 0


def test_a_grid_search_races_cloned_pipelines() -> None:
    reg = registry(
        pipeline=LR,
        metrics=("Accuracy",),
        search={"grid": {"LogisticRegression.l2": [0.0, 0.01, 0.1]}, "budget": 2, "seed": 1},
    )
    feed(reg, datasets.Phishing())
    board = reg.get("m").leaderboard()
    searched = [c for c in board if c["name"].startswith("search-")]
    assert len(searched) == 2
    for candidate in searched:
        l2 = reg.get("m").challengers[[c.name for c in reg.get("m").challengers].index(
            candidate["name"])].estimator["LogisticRegression"].l2  # fmt: skip
        metric = metrics.Accuracy()
        model = preprocessing.StandardScaler() | linear_model.LogisticRegression(l2=l2)
        evaluate.progressive_val_score(datasets.Phishing(), model, metric)
        assert candidate["cumulative"]["Accuracy"] == pytest.approx(metric.get(), abs=1e-12)


def changing_stream() -> list[tuple[dict[str, Any], Any]]:
    """A linear concept, then a tree-shaped one: a different family wins after the change."""
    before = itertools.islice(datasets.synth.Hyperplane(seed=1, n_features=4), 3000)
    after = itertools.islice(datasets.synth.Agrawal(seed=1, classification_function=0), 5000)
    return [({f"h{k}": v for k, v in x.items()}, y) for x, y in before] + list(after)


def test_a_challenger_is_promoted_after_the_change_and_accuracy_recovers() -> None:
    reg = registry(
        pipeline=LR, metrics=("Accuracy",), rolling_window=500,
        challengers={"tree": "tree.HoeffdingTreeClassifier()"},
        auto_promote=True, promotion_margin=0.05,
    )  # fmt: skip
    promotions = feed(reg, changing_stream())
    (promotion,) = promotions
    assert promotion.to == "tree" and promotion.reason == "auto"
    assert promotion.n_learned > 3000  # after the change, not before
    model = reg.get("m")
    assert model.champion == "tree" and model.model_version == 2
    history = {p["n_learned"]: p["rolling"]["Accuracy"] for p in model.history}
    at_promotion = history[promotion.n_learned]
    assert history[8000] > at_promotion + 0.1  # the served accuracy recovers
    board = {c["name"]: c for c in model.leaderboard()}
    assert board["default"]["role"] == "challenger"  # the old champion can be promoted back


def test_the_drift_policy_can_hand_over_to_the_best_challenger() -> None:
    reg = registry(
        pipeline=LR, metrics=("Accuracy",), rolling_window=500, drift=("ADWIN()",),
        drift_policy="promote", challengers={"tree": "tree.HoeffdingTreeClassifier()"},
    )  # fmt: skip
    promotions = feed(reg, changing_stream())
    assert promotions and promotions[0].reason == "drift"
    assert promotions[0].n_learned > 3000


def test_challengers_survive_a_snapshot(tmp_path: Path) -> None:
    reg = registry(
        pipeline=LR, metrics=("Accuracy",),
        challengers={"tree": "tree.HoeffdingTreeClassifier()"},
    )  # fmt: skip
    feed(reg, itertools.islice(datasets.Phishing(), 600))
    model = reg.get("m")
    model.promote("tree", reason="admin")
    store = SnapshotStore(tmp_path, b"k", retention=2)
    store.write("m", model.snapshot_state({}), {})
    twin = OnlineModel(model.spec, Limits())
    twin.restore_state(store.read("m")[0])

    def comparable(board: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "memory_bytes"} for c in board]

    assert comparable(twin.leaderboard()) == comparable(model.leaderboard())
    x = next(iter(datasets.Phishing()))[0]
    assert twin.predict(x) == model.predict(x)
    with pytest.raises(UnknownCandidate):
        model.promote("nobody", reason="admin")


def test_challenger_specs_are_checked() -> None:
    with pytest.raises(ValueError, match=r"challengers\.reg: a binary model needs a classifier"):
        ModelSpec(name="m", task="binary", pipeline=LR,
                  challengers={"reg": "linear_model.LinearRegression()"})  # fmt: skip
    with pytest.raises(ValueError, match="search: search-1"):
        ModelSpec(name="m", task="binary", pipeline=LR,
                  search={"grid": {"Nope.l2": [0.1]}})  # fmt: skip


def test_rivers_own_model_selection_can_be_the_pipeline() -> None:
    reg = registry(
        pipeline=(
            "model_selection.SuccessiveHalvingClassifier(models=["
            "linear_model.LogisticRegression(l2=0.0), linear_model.LogisticRegression(l2=0.1),"
            "tree.HoeffdingTreeClassifier()], metric=metrics.Accuracy(), budget=2000)"
        ),
        metrics=("Accuracy",),
    )
    feed(reg, datasets.Phishing())
    assert reg.get("m").n_learned == 1250
    assert reg.get("m").metrics.cumulative()["Accuracy"] > 0.8
