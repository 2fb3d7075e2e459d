from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import pytest

from streams.broker.cluster_id import new_cluster_id
from streams.broker.java import require_java
from streams.broker.local import LocalKafka
from streams.learning.errors import BrokerError


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


def test_cluster_ids_never_begin_with_a_dash() -> None:
    # The first draw encodes as "-AAAA...", which kafka-storage reads as an option; the
    # second is Kafka's reserved all-zero id. Only the third may be used.
    leading_dash = uuid.UUID(bytes=b"\xf8" + bytes(15))
    assert base64.urlsafe_b64encode(leading_dash.bytes).startswith(b"-")
    usable = uuid.UUID(int=2)
    draws = iter([leading_dash, uuid.UUID(int=0), usable])
    assert new_cluster_id(lambda: next(draws)) == "AAAAAAAAAAAAAAAAAAAAAg"


def test_random_cluster_ids_are_22_characters_of_base64url() -> None:
    # One uuid4 in 64 would begin with "-": 5000 draws meet about 78 of them.
    ids = [new_cluster_id() for _ in range(5000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)
    assert len(set(ids)) == len(ids)
