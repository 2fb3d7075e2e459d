"""JSON logs and the audit trail on a real broker: every line a worker writes is a JSON
object, and every admin call (done or refused) lands once on the audit topic and in the log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pytest

from streams.audit import fingerprint
from tests.integration import test_scale
from tests.integration.conftest import NodeProcess
from tests.integration.kafka_io import consume, produce, run

pytestmark = pytest.mark.integration

TOKEN = "audit-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODELS = """
[models.clicks]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"
metrics = ["Accuracy"]

[models.clicks.challengers]
tree = "tree.HoeffdingTreeClassifier()"
"""


def log_lines(node: NodeProcess) -> list[dict[str, Any]]:
    """Every non-empty line of the worker's log (stdout and stderr), each a JSON object with
    the time, level, logger and message."""
    documents = []
    for text in node.log.read_text().splitlines():
        if not text.strip():
            continue
        document = orjson.loads(text)  # raises on a line that is not JSON
        assert isinstance(document, dict), text
        assert {"ts", "level", "logger", "message"} <= document.keys(), text
        assert datetime.fromisoformat(document["ts"]).utcoffset() is not None, text
        documents.append(document)
    return documents


def test_json_logs_and_the_audit_of_admin_calls(start_node: Any) -> None:
    node = start_node(MODELS, STREAMLEARN_ADMIN_TOKEN=TOKEN, STREAMLEARN_LOG_FORMAT="json")
    events = [orjson.dumps({"event_id": f"e{i}", "model": "clicks", "features": {"x": i % 7},
                            "label": i % 2 == 0}) for i in range(30)]  # fmt: skip
    events.insert(10, b'{"event_id": "bad", "model": "clicks", "features": {"x": null}}')
    run(produce(node.bootstrap, node.topic("events"), events, key=b"clicks",
                **node.client_options))  # fmt: skip
    node.wait_for("clicks", "n_learned", 30)

    assert node.post("/models/clicks/snapshots", headers=AUTH).status_code == 201
    assert node.post("/models/clicks/candidates/tree/promote", headers=AUTH).status_code == 200
    wrong = {"Authorization": "Bearer guess"}
    assert node.post("/models/clicks/snapshots/1/restore", headers=wrong).status_code == 401
    audit = run(consume(node.bootstrap, node.topic("audit"), 3, timeout=30,
                        **node.client_options))  # fmt: skip
    node.stop()  # the shutdown's lines too

    snapshot, promotion, refused = audit
    assert [(a["action"], a["result"], a["status"]) for a in audit] == [
        ("snapshot", "ok", 201), ("promote", "ok", 200),
        ("restore", "send Authorization: Bearer <STREAMLEARN_ADMIN_TOKEN>", 401)]  # fmt: skip
    for entry in audit:
        assert entry["model"] == "clicks" and entry["node"] == node.url
        assert entry["who"]["client"] == "127.0.0.1" and entry["who"]["relayed_by"] is None
        assert datetime.fromisoformat(entry["ts"]).utcoffset() is not None
    assert snapshot["who"]["token_fingerprint"] == fingerprint(TOKEN)
    assert snapshot["detail"]["version"] == 1
    assert promotion["detail"]["to"] == "tree" and promotion["detail"]["from"] == "default"
    assert refused["who"]["token_fingerprint"] == fingerprint("guess")
    assert refused["detail"] == {"version": 1}

    lines = log_lines(node)
    loggers = {line["logger"] for line in lines}
    # Faust's own lines, aiokafka's and uvicorn's go through the same formatter.
    assert any(name.startswith("faust") for name in loggers), loggers
    assert any(name.startswith("aiokafka") for name in loggers), loggers
    assert "uvicorn.access" in loggers and "uvicorn.error" in loggers
    (dead,) = [line for line in lines if line["message"].startswith("dead letter")]
    assert dead["level"] == "WARNING" and dead["model"] == "clicks"
    assert dead["topic"] == node.topic("events") and dead["offset"] == 10
    logged = [line["audit"] for line in lines if "audit" in line]
    assert logged == audit  # the same fields, in the log and on the topic
    assert TOKEN not in node.log.read_text()


@pytest.mark.slow
def test_a_relayed_admin_call_is_audited_once_by_the_owner(start_node: Any) -> None:
    env = {**test_scale.GROUP_ENV, "STREAMLEARN_LOG_FORMAT": "json"}
    a = start_node(test_scale.MODELS, **env)
    b = start_node(test_scale.MODELS, join=a, **env)
    owner = test_scale.spread_over([a, b])
    name = next(n for n, url in owner.items() if url == b.url)
    auth = {"Authorization": f"Bearer {test_scale.TOKEN}"}
    response = a.post(f"/models/{name}/snapshots", headers=auth)
    assert response.status_code == 201
    assert response.headers["x-streamlearn-node"] == b.url
    assert a.post(f"/models/{name}/snapshots").status_code == 401  # refused by the owner too
    audit = run(consume(a.bootstrap, a.topic("audit"), 3, timeout=10, **a.client_options))
    assert [(e["status"], e["model"], e["node"]) for e in audit] == [
        (201, name, b.url), (401, name, b.url)]  # fmt: skip
    for entry in audit:
        assert entry["who"]["client"] == "127.0.0.1"
        assert entry["who"]["relayed_by"]["node"] == a.url
    for node in (a, b):
        node.stop()
    assert [line["audit"]["status"] for line in log_lines(b) if "audit" in line] == [201, 401]
    assert not [line for line in log_lines(a) if "audit" in line]
