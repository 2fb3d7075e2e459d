"""The dashboard in a real headless Chromium, on the demo's models and streams: one chart per
metric, each on its own scale, the first window left out, drift marks, the leaderboard, and
a tuning job's progress and trials."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, sync_playwright

from streams.cli import DEMO_STREAMS
from streams.learning.spec import load_specs
from streams.replay import iter_source, replay
from streams.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: The demo's models, as `make run` shows them.
MODELS = (ROOT / "models.toml").read_text(encoding="utf-8")
SPECS = load_specs(ROOT / "models.toml")
TOKEN = "dashboard-admin-token"
#: Events in one pass of each demo stream.
ONE_PASS = {model: limit or sum(1 for _ in iter_source(source))
            for source, model, limit in DEMO_STREAMS}  # fmt: skip


def attr(locator: Locator, name: str) -> float:
    return float(locator.get_attribute(name) or "nan")


def metric_charts(page: Page, model: str) -> dict[str, Locator]:
    """The charts of a model's card by metric, checked to be one per metric."""
    charts = page.locator(f'section#model-{model} svg.chart[data-model="{model}"]').all()
    by_metric = {c.get_attribute("data-metric"): c for c in charts}
    assert len(by_metric) == len(charts), f"{model}: one chart per metric"
    assert list(by_metric) == list(SPECS[model].metrics)
    return {str(k): v for k, v in by_metric.items()}


def check_charts(page: Page, model: str, history: dict[str, Any]) -> dict[str, Locator]:
    """Each chart draws the API's points after the first window, on an axis of its own that
    spans them (with a margin)."""
    window = history["window"]
    kept = [p for p in history["points"] if p["n_learned"] > window]
    assert kept, f"{model}: nothing past the first window"
    charts = metric_charts(page, model)
    ranges, spans = set(), set()
    for name, chart in charts.items():
        values = [p["rolling"][name] for p in kept]
        lo, hi = min(values), max(values)
        spans.add((lo, hi))
        y_min, y_max = attr(chart, "data-y-min"), attr(chart, "data-y-max")
        assert int(attr(chart, "data-points")) == len(kept), (model, name)
        assert attr(chart, "data-x-min") == kept[0]["n_learned"]
        assert attr(chart, "data-last-n") == kept[-1]["n_learned"]
        assert attr(chart, "data-last") == pytest.approx(values[-1])
        assert lo - 0.1 * (hi - lo) - 0.05 <= y_min <= lo, (model, name, y_min, lo)
        assert hi <= y_max <= hi + 0.1 * (hi - lo) + 0.05, (model, name, y_max, hi)
        assert chart.locator("polyline.metric-line").count() == 1
        ranges.add((y_min, y_max))
    # Own scales: as many axis ranges as value ranges (MicroF1 is Accuracy for one label).
    assert len(ranges) == len(spans) > 1, f"{model}: each metric has its own scale"
    return charts


def tune_phishing(url: str) -> dict[str, Any]:
    """A small tuning job on the phishing model, followed to its end."""
    started = httpx.post(
        f"{url}/models/phishing/tune",
        json={"space": {"LogisticRegression.l2": {"low": 0.0, "high": 0.01}},
              "sampler": "random", "budget": 3, "window": 500},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30,
    )  # fmt: skip
    assert started.status_code == 202, started.text
    job = started.json()["job"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        progress: dict[str, Any] = httpx.get(f"{url}/models/phishing/tune/{job}").json()
        if progress["state"] != "reading" and progress["state"] != "running":
            assert progress["state"] == "done", progress
            return progress
        time.sleep(0.3)
    raise AssertionError("the tuning job did not end in 120 s")


def test_dashboard_draws_one_chart_per_metric_with_drift_marks(start_node: Any) -> None:
    node = start_node(MODELS, STREAMLEARN_ADMIN_TOKEN=TOKEN)
    settings = Settings(kafka_bootstrap_servers=node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
                        topic_prefix=node.prefix)  # fmt: skip

    async def one_pass_each() -> None:
        await asyncio.gather(
            *(replay(settings, source, model, limit=limit, batch=100, progress=False)
              for source, model, limit in DEMO_STREAMS)
        )  # fmt: skip

    asyncio.run(one_pass_each())
    for model, n in ONE_PASS.items():
        node.wait_for(model, "n_learned", n, timeout=120)
    history = {model: node.get(f"/models/{model}/history").json() for model in ONE_PASS}
    detections = [d["n_learned"] for d in node.get("/models/drifting/drift").json()["recent"]]
    # The drifting stream changes concept at event 5,000 (see models.toml).
    assert any(5000 < n < 5500 for n in detections), detections
    trump_r2 = [p["rolling"]["R2"] for p in history["trump"]["points"]]
    assert min(trump_r2) < -1000, "the first window holds the outlier the charts leave out"
    tuning = tune_phishing(node.url)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(node.url + "/")
        page.wait_for_function("Number(document.body.dataset.refreshes || 0) >= 2")
        assert "first rolling window is left out" in page.locator("#note").inner_text()

        classifier = check_charts(page, "phishing", history["phishing"])
        assert set(classifier) == {"Accuracy", "Precision", "Recall", "F1", "ROCAUC", "LogLoss"}
        check_charts(page, "segments", history["segments"])
        regressor = check_charts(page, "trump", history["trump"])
        assert set(regressor) == {"MAE", "RMSE", "R2"}
        # R2 is -105,674 in the first window; after it, TrumpApproval's stays above -1.
        assert attr(regressor["R2"], "data-y-min") > -2
        assert int(attr(regressor["R2"], "data-skipped")) > 0

        for name, chart in check_charts(page, "drifting", history["drifting"]).items():
            marks = [int(attr(m, "data-n-learned")) for m in chart.locator("line.drift-mark").all()]
            assert marks == detections, name
        for model in ("phishing", "segments", "trump"):
            assert page.locator(f"section#model-{model} line.drift-mark").count() == 0

        learned = page.locator('section#model-drifting td[data-counter="learned"]').inner_text()
        assert learned.replace(",", "") == str(ONE_PASS["drifting"])
        rows = page.locator("section#model-phishing table.leaderboard tr[data-candidate]")
        assert {r.get_attribute("data-candidate") for r in rows.all()} == {"default", "tree", "nb"}
        assert page.locator('tr[data-candidate="tree"][data-role="challenger"]').count() == 1
        panel = page.locator("#tuning-phishing")
        panel.locator('xpath=self::*[@data-state="done"]').wait_for()
        assert panel.get_attribute("data-n-done") == panel.get_attribute("data-budget") == "3"
        trials = panel.locator("table.tuning-trials tr[data-number]").all()
        assert sorted(int(r.get_attribute("data-number") or -1) for r in trials) == [0, 1, 2]
        best = panel.locator(".tuning-best")
        assert attr(best, "data-score") == pytest.approx(tuning["best"]["score"], abs=1e-9)
        for model in ("segments", "trump", "drifting"):
            assert page.locator(f"#tuning-{model}").get_attribute("data-state") == "none"
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
