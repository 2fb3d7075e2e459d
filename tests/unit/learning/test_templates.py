"""Models per key: a template makes ``<template>:<key>`` on the first event for a key."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from streams.learning.catalog import load_templates, version_from_fields
from streams.learning.errors import InvalidSpec, SpecError
from streams.learning.registry import ModelRegistry
from streams.learning.templates import Template
from tests.unit.streams.factories import registry

FRAUD = {"key_field": "merchant", "max_models": 2, "task": "regression",
         "pipeline": "linear_model.LinearRegression()"}  # fmt: skip


def with_template(partitions: int = 4) -> ModelRegistry:
    reg = registry(partitions)
    spec, template = version_from_fields("fraud", FRAUD)
    assert template == Template("merchant", 2)
    reg.templates["fraud"] = (spec, template)
    return reg


def events(*keys: object, model: str = "fraud", start: int = 0) -> bytes:
    return orjson.dumps([
        {"event_id": f"e{start + i}", "model": model, "features": {"merchant": k, "x": i},
         "label": float(i)} for i, k in enumerate(keys)
    ])  # fmt: skip


def test_each_key_gets_its_model_on_its_first_event() -> None:
    reg = with_template()
    p = reg.partition_of("fraud")
    out = reg.handle_events(events("acme", "acme", 7), topic="ev", partition=p, offset=3, now=0.0)
    assert [m.name for m in out.created] == ["fraud:acme", "fraud:7"]
    assert reg.get("fraud:acme").n_learned == 2 and reg.get("fraud:7").n_learned == 1
    assert reg.get("fraud:acme").offsets == {f"ev:{p}": 3}
    assert reg.get("fraud:acme").state()["n_features"] == 1  # x: the key tells it nothing
    assert reg.partition_of("fraud:acme") == p and reg.partition_of("fraud:zzz") == p
    assert {pred.model for pred in out.predictions} == {"fraud:acme", "fraud:7"}
    again = reg.handle_events(events("acme", start=9), topic="ev", partition=p, offset=4, now=0.0)
    assert again.created == [] and reg.get("fraud:acme").n_learned == 3


def test_past_max_models_and_without_a_key_events_are_dead_lettered() -> None:
    reg = with_template()
    p = reg.partition_of("fraud")
    out = reg.handle_events(events("a", "b", "c", None, "x y", True), topic="ev", partition=p,
                            offset=0, now=0.0)  # fmt: skip
    errors = [d.error for d in out.dead_letters]
    assert len(errors) == 4 and sorted(reg.models) == ["fraud:a", "fraud:b", "m"]
    assert errors[0].startswith("[2].template 'fraud' has made max_models = 2 models already")
    assert "keyed by features.merchant" in errors[1] and "got missing" in errors[1]
    assert "got 'x y'" in errors[2] and "got True" in errors[3]


def test_a_label_names_the_model_of_its_key() -> None:
    reg = with_template()
    p = reg.partition_of("fraud")
    unlabelled = orjson.dumps({"event_id": "u", "model": "fraud", "features": {"merchant": "a"}})
    reg.handle_events(unlabelled, topic="ev", partition=p, offset=0, now=0.0)
    refused = reg.handle_labels(orjson.dumps({"event_id": "u", "model": "fraud", "label": 1.0}),
                                topic="lb", partition=p, offset=0, now=0.0)  # fmt: skip
    assert "a label names the model of its event, fraud:<merchant>" in refused.dead_letters[0].error
    reg.handle_labels(orjson.dumps({"event_id": "u", "model": "fraud:a", "label": 1.0}),
                      topic="lb", partition=p, offset=1, now=0.0)  # fmt: skip
    assert reg.get("fraud:a").n_learned == 1


def test_an_event_for_a_template_on_another_partition_is_moved_not_made() -> None:
    reg = with_template()
    other = (reg.partition_of("fraud") + 1) % 4
    out = reg.handle_events(events("a"), topic="ev", partition=other, offset=0, now=0.0)
    assert out.created == [] and "fraud:a" not in reg.models
    assert [r.partition for r in out.reroutes] == [reg.partition_of("fraud")]


def test_a_template_needs_a_key_field(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec) as caught:
        version_from_fields("fraud", {k: v for k, v in FRAUD.items() if k != "key_field"})
    assert caught.value.field == "key_field"
    with pytest.raises(InvalidSpec) as caught:
        version_from_fields("fraud", {**FRAUD, "max_models": 0})
    assert caught.value.field == "max_models"
    path = tmp_path / "models.toml"
    path.write_text('[templates.fraud]\ntask = "binary"\npipeline = "naive_bayes.GaussianNB()"\n')
    with pytest.raises(SpecError, match=r"templates\.fraud\.key_field: a template needs"):
        load_templates(path)
    path.write_text('[templates.fraud]\nkey_field = "m"\ntask = "binary"\npipeline = "x"\n')
    with pytest.raises(SpecError, match=r"templates\.fraud\.pipeline: "):
        load_templates(path)
