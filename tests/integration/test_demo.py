"""`streamlearn demo`, the README's run command without the setup, against the test broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from streams.replay import iter_source
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def demo_env(kafka: str, tmp_path: Path, prefix: str) -> tuple[dict[str, str], int]:
    """The demo's environment on the session's broker, with its own topics and port."""
    port = free_port()
    env = {
        **os.environ,
        "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "STREAMLEARN_TOPIC_PREFIX": f"{prefix}.",
        "STREAMLEARN_APP_ID": prefix,
        "STREAMLEARN_MODELS": str(ROOT / "models.toml"),
        "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
        "STREAMLEARN_HTTP_PORT": str(port),
    }
    return env, port


def test_demo_starts_a_node_streams_the_bundled_data_and_says_where_to_look(
    kafka: str, tmp_path: Path
) -> None:
    env, port = demo_env(kafka, tmp_path, "demo-test")
    done = subprocess.run(
        [sys.executable, "-m", "streams.cli", "demo", "--rate", "5000", "--exit-after-replay"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"http://127.0.0.1:{port}/                    the live dashboard" in done.stdout
    assert "  drifting  <- river:synth.ConceptDriftStream(" in done.stdout
    assert "the demo streams are all sent; stopping the node" in done.stdout
    assert done.stdout.rstrip().endswith("stopped")
    # The broker was already running, so the demo leaves it alone.
    assert "Apache Kafka: a broker not started by streamlearn answers here" in done.stdout


def test_demo_streams_pass_after_pass_until_ctrl_c(kafka: str, tmp_path: Path) -> None:
    env, port = demo_env(kafka, tmp_path, "demo-loop")
    url = f"http://127.0.0.1:{port}"
    one_pass = sum(1 for _ in iter_source("river:TrumpApproval"))
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "demo", "--rate", "1000"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        state: dict[str, object] = {}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and demo.poll() is None:
            try:
                state = httpx.get(f"{url}/models/trump", timeout=5).json()
            except httpx.HTTPError:
                state = {}
            if int(str(state.get("n_learned", 0))) > 2 * one_pass:
                break
            time.sleep(0.5)
        # Later passes are learned as new events, not dropped as duplicates of the first.
        assert int(str(state.get("n_learned", 0))) > 2 * one_pass, log.read_text()[-3000:]
        assert state["n_duplicates"] == 0
        assert demo.poll() is None, "the demo must keep streaming until Ctrl-C"
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "Ctrl-C: stopping the demo streams and the node" in output
    assert output.rstrip().endswith("stopped")
    assert "Traceback" not in output, output[-3000:]
    # The demo stopped its worker: nothing answers on the node's port any more.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/readyz", timeout=5)
