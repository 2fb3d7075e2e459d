"""The metrics timer reports the models live here that have learned, and only those."""

from __future__ import annotations

import orjson

from streams.agents.metrics import metrics_reports
from streams.learning.spec import ModelSpec
from tests.unit.streams.factories import learn, registry


def test_a_report_per_live_model_that_has_learned() -> None:
    spec = ModelSpec(name="idle", task="regression", pipeline="linear_model.LinearRegression()")
    reg = registry(m=ModelSpec(name="m", task="regression",
                               pipeline="linear_model.LinearRegression()"), idle=spec)  # fmt: skip
    learn(reg, 4)
    ts = "2026-01-01T00:00:00+00:00"
    (report,) = metrics_reports(reg, lambda name: True, ts)  # idle has learned nothing
    message = orjson.loads(report.encode())
    assert message["model"] == "m" and message["n_learned"] == 4 and message["ts"] == ts
    assert "candidates" not in message and set(message["cumulative"]) == {"MAE", "RMSE", "R2"}
    assert list(metrics_reports(reg, lambda name: name != "m", ts)) == []  # moved away
