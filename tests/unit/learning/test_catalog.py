"""The registry's records: versions, history through compaction, and what a change needs."""

from __future__ import annotations

import pytest

from streams.learning.catalog import Catalog, ModelRecord, spec_from_fields
from streams.learning.changes import IN_PLACE_FIELDS, REBUILD_FIELDS, apply_in_place, classify
from streams.learning.errors import InvalidSpec, SpecError
from streams.learning.events import Event
from streams.learning.model import Limits, OnlineModel
from streams.learning.spec import ModelSpec

LINEAR = {"task": "regression", "pipeline": "linear_model.LinearRegression()"}


def spec(**fields: object) -> ModelSpec:
    return spec_from_fields("m", {**LINEAR, **fields})


def test_a_record_keeps_every_version_so_compaction_loses_no_history() -> None:
    catalog = Catalog()
    for every in (10, 20, 30):
        record = catalog.propose(spec(snapshot_every=every), "abc", f"t{every}")
        catalog.apply("m", ModelRecord.decode("m", record.encode()))
    last = ModelRecord.decode("m", catalog.records["m"].encode())  # all compaction keeps
    assert [(v.version, v.spec.snapshot_every) for v in last.versions()] == [
        (1, 10), (2, 20), (3, 30),
    ]  # fmt: skip
    assert last.current.who == "abc" and last.current.when == "t30"


def test_a_record_written_twice_or_late_changes_nothing() -> None:
    catalog = Catalog()
    first = catalog.propose(spec(), None, "t")
    assert catalog.apply("m", first).kind == "created"
    assert catalog.apply("m", first).kind == "unchanged"  # the node's own write, read back
    other = catalog.propose(spec(snapshot_every=5), None, "t")
    assert catalog.apply("m", other).kind == "in_place"
    assert catalog.apply("m", first).kind == "unchanged"  # an older version never wins


def test_a_retired_model_deployed_again_continues_its_numbering() -> None:
    catalog = Catalog()
    catalog.apply("m", catalog.propose(spec(), None, "t"))
    assert catalog.apply("m", None).kind == "retired"
    assert "m" not in catalog and catalog.current("m") is None
    assert catalog.apply("m", None).kind == "unknown"
    again = catalog.propose(spec(), None, "t")
    assert catalog.apply("m", again).kind == "created" and again.current.version == 2


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"task": "binary"}, "pipeline", "needs a classifier"),
        ({"metrics": ["Accuracy"]}, "metrics", "not available"),
        ({"rolling_window": 0}, "rolling_window", "greater than or equal to 1"),
        ({"colour": "red"}, "colour", "Extra inputs"),
        ({"pipeline": "__import__('os').system('id')"}, "pipeline", ""),
        ({"alert_below": {"MAE": 1.0}}, "alert_below", "better when smaller"),
        ({"challengers": {"t": "linear_model.LogisticRegression()"}}, "challengers.t", ""),
    ],
)
def test_an_invalid_spec_names_its_field(fields: dict[str, object], field: str, words: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        spec(**fields)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and words in str(caught.value)


@pytest.mark.parametrize("name", ["fraud:", ":eu", "a:b:c", "a b", "", "-x", "x" * 65, "é", "a/b"])
def test_a_name_not_allowed_is_refused_for_its_name(name: str) -> None:
    with pytest.raises(InvalidSpec) as caught:
        spec_from_fields(name, LINEAR)
    assert caught.value.field == "name"


def test_a_spec_is_an_object_without_a_name() -> None:
    with pytest.raises(InvalidSpec, match="must be an object"):
        spec_from_fields("m", ["task"])
    with pytest.raises(InvalidSpec, match="named by its path") as caught:
        spec_from_fields("m", {**LINEAR, "name": "other"})
    assert caught.value.field == "name"


def test_a_record_that_is_not_one_is_refused_whole() -> None:
    for raw in (b"nope", b"[]", b'{"name": "other"}', b'{"name": "m", "version": 1}'):
        with pytest.raises(SpecError):
            ModelRecord.decode("m", raw)


def test_every_setting_is_either_rebuilt_or_applied_in_place() -> None:
    assert REBUILD_FIELDS | IN_PLACE_FIELDS == set(ModelSpec.model_fields) - {"name"}
    assert classify(spec(), spec()) == "unchanged"
    assert classify(spec(), spec(drift=["ADWIN()"], alert_below={"R2": 0.1})) == "in_place"
    assert classify(spec(), spec(preprocess="none")) == "rebuild"
    assert classify(spec(), spec(challengers={"t": "tree.HoeffdingTreeRegressor()"})) == "rebuild"


def test_an_in_place_change_keeps_what_the_model_learned() -> None:
    model = OnlineModel(spec(), Limits())
    for i in range(50):
        model.process(Event(str(i), "m", {"x": float(i)}, 2.0 * i), now=0.0)
    estimator, weights = model.estimator, dict(model.estimator["LinearRegression"].weights)
    apply_in_place(model, spec(metrics=["MAE"], rolling_window=10, drift=["ADWIN()"],
                               snapshot_every=7, max_features=3))  # fmt: skip
    assert model.estimator is estimator and model.n_learned == 50
    assert dict(model.estimator["LinearRegression"].weights) == weights
    assert list(model.metrics.cumulative()) == ["MAE"] and model.metrics.window == 10
    assert model.spec.snapshot_every == 7 and model.guard.max_features == 3
    assert [d["name"] for d in model.drift.state()] == ["ADWIN"]
    model.process(Event("50", "m", {"x": 50.0}, 100.0), now=0.0)
    assert model.n_learned == 51 and model.metrics.cumulative()["MAE"] >= 0
