from __future__ import annotations

from pathlib import Path

import pytest

from streams.broker.local import BrokerError, LocalKafka, require_java


def test_missing_java_is_reported_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError, match=r"Java 17\+ is needed to run Apache Kafka"):
        require_java()


def test_missing_maven_is_reported_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    broker = LocalKafka(tmp_path, "127.0.0.1", 1, version="4.1.1")
    with pytest.raises(BrokerError, match=r"Maven \(mvn\) is needed"):
        broker._fetch_jars()


def test_status_of_nothing_running_and_stop_of_nothing(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path, "127.0.0.1", 1, version="4.1.1")
    status = broker.status()
    assert not status.running and status.pid is None
    assert status.detail == "not running"
    assert broker.stop() is False
