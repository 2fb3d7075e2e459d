"""`streamlearn demo`, the README's run command without the setup, against the test broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_starts_a_node_streams_the_bundled_data_and_says_where_to_look(
    kafka: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "STREAMLEARN_TOPIC_PREFIX": "demo-test.",
        "STREAMLEARN_APP_ID": "demo-test",
        "STREAMLEARN_MODELS": str(ROOT / "models.toml"),
        "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
        "STREAMLEARN_HTTP_PORT": str(port),
    }
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--rate", "5000", "--exit-after-replay"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"http://127.0.0.1:{port}/                    the live dashboard" in done.stdout
    assert "the demo streams are all sent" in done.stdout
    # The broker was already running, so the demo leaves it alone.
    assert "Apache Kafka: a broker not started by streamlearn answers here" in done.stdout
