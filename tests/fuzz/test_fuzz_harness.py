"""The fuzz harnesses run clean for a fixed, seeded number of inputs.

Each harness runs as its own process, the way a developer runs it: a crash (an exception that
is not the project's own, a hang past ``-timeout``, a process abort inside River's Rust code)
fails the test with libFuzzer's report, and the crashing input is left in pytest's temporary
folder. ``-seed=1`` makes libFuzzer try the same inputs on every run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.parametrize(
    ("harness", "runs"),
    [("fuzz_decoders.py", 20_000), ("fuzz_pipeline.py", 10_000), ("fuzz_registry.py", 5_000)],
)
def test_harness_runs_clean(harness: str, runs: int, tmp_path: Path) -> None:
    command = [
        sys.executable, str(HERE / harness), f"-runs={runs}", "-seed=1", "-timeout=10",
        "-rss_limit_mb=2048", f"-artifact_prefix={tmp_path}/",
    ]  # fmt: skip
    done = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, timeout=120
    )
    report = done.stdout.decode(errors="replace")
    # From the harness's "... was given ..." line and atheris's traceback on, if they are there.
    marks = [i for i in (report.find(" was given "), report.find("=== Uncaught")) if i >= 0]
    crash = report[report.rfind("\n", 0, min(marks)) + 1 :] if marks else report
    assert done.returncode == 0, f"{harness} crashed:\n{crash[-6000:]}"
    assert f"Done {runs} runs" in report
