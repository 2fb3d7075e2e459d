"""A worker started with no broker stops within its connect timeout, with one line and no
traceback. No broker is needed: the point is that none answers."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streams.kafka_check import wait_for_broker
from streams.learning.errors import BrokerUnreachable

ROOT = Path(__file__).resolve().parents[2]


def unused_port() -> int:
    """A loopback port nothing listens on (free when asked; nothing here binds it after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_worker_without_a_broker_stops_with_one_line(tmp_path: Path) -> None:
    address = f"127.0.0.1:{unused_port()}"
    env = {
        **os.environ,
        "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": address,
        "STREAMLEARN_KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
        "STREAMLEARN_STATE_DIR": str(tmp_path / "state"),
        "STREAMLEARN_MODELS": str(ROOT / "models.toml"),
        "STREAMLEARN_HTTP_PORT": str(unused_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "worker"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert address in result.stderr
    assert "streamlearn kafka start" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().startswith("streamlearn: no Kafka broker answers at")


async def test_waiting_for_no_broker_raises_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"127.0.0.1:{unused_port()}"
    with caplog.at_level(logging.DEBUG), pytest.raises(BrokerUnreachable, match=address):
        await wait_for_broker(address, 0.5)
    assert not [r for r in caplog.records if r.name.startswith("aiokafka")]
    # The quiet spell ends with the check: aiokafka logs as configured again.
    assert logging.getLogger("aiokafka").level == logging.NOTSET
