"""The dashboard in a real headless Chromium: it loads, and its curves are the API's data."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from streams.replay import replay
from streams.settings import Settings

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
N = 5000

MODELS = """
[models.drifting]
task = "binary"
pipeline = "naive_bayes.GaussianNB()"
preprocess = "none"
metrics = ["Accuracy", "F1"]
rolling_window = 500
drift = ["ADWIN()"]

[models.phishing]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
challengers = { tree = "tree.HoeffdingTreeClassifier()" }
"""


def test_dashboard_draws_the_api_data_with_drift_marks(start_node: Any) -> None:
    node = start_node(MODELS)
    settings = Settings(kafka_bootstrap_servers=node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"],
                        topic_prefix=node.prefix)  # fmt: skip
    source = "river:synth.ConceptDriftStream(seed=42, position=3000, width=50)"
    asyncio.run(replay(settings, source, "drifting", limit=N, progress=False))
    asyncio.run(replay(settings, "river:Phishing", "phishing", progress=False))
    node.wait_for("drifting", "n_learned", N, timeout=90)
    node.wait_for("phishing", "n_learned", 1250, timeout=90)
    history = node.get("/models/drifting/history").json()["points"]
    detections = node.get("/models/drifting/drift").json()["recent"]
    assert detections, "the stream drifts, so the chart must carry a drift mark"

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
        chart = page.locator('section#model-drifting svg.chart[data-model="drifting"]')
        lines = {
            line.get_attribute("data-metric"): line
            for line in chart.locator("polyline.metric-line").all()
        }
        assert set(lines) == {"Accuracy", "F1"}
        for name, line in lines.items():
            assert int(line.get_attribute("data-points") or 0) == len(history)
            assert float(line.get_attribute("data-last") or "nan") == pytest.approx(
                history[-1]["rolling"][name]
            )
            assert int(line.get_attribute("data-last-n") or 0) == N
        marks = [int(m.get_attribute("data-n-learned") or -1)
                 for m in chart.locator("line.drift-mark").all()]  # fmt: skip
        assert marks == [d["n_learned"] for d in detections]
        learned = page.locator('section#model-drifting td[data-counter="learned"]').inner_text()
        assert learned.replace(",", "") == str(N)
        assert page.locator("section#model-phishing polyline.metric-line").count() == 6
        rows = page.locator("section#model-phishing table.leaderboard tr[data-candidate]")
        assert rows.count() == 2
        assert page.locator('tr[data-candidate="tree"][data-role="challenger"]').count() == 1
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        browser.close()
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000
