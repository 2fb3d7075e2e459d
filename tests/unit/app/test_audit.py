"""Every call of an admin route is audited once, whatever came of it: who, what, the result."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.deps import get_admin, get_audit
from app.forwarding import FORWARDED_HEADER, ForwardToOwner, Peers
from app.main import create_api
from streams.admin import Admin
from streams.agents.publish import Publisher
from streams.audit import AuditTrail, fingerprint
from streams.node import build_node
from streams.rebalance import Lifecycle
from streams.settings import Settings
from streams.topics import CONTRACT_TOPICS, Topics
from tests.unit.app.test_forwarding import FakePeer, Inner, group, two_partitions
from tests.unit.streams.factories import Assignment, RecordingFaustTopic, StandInTopic

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODELS = """
[models.clicks]
task = "binary"
pipeline = "linear_model.LogisticRegression()"
challengers = { tree = "tree.HoeffdingTreeClassifier()" }
"""


@dataclass
class Audited:
    """An HTTP client of a node whose audit topic (and every other topic) records."""

    client: httpx.AsyncClient
    audit_topic: RecordingFaustTopic

    def entries(self) -> list[dict[str, Any]]:
        return [orjson.loads(value) for _, value in self.audit_topic.sent]


async def audited_node(tmp_path: Path, **settings: Any) -> AsyncIterator[Audited]:
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    node = build_node(Settings(models=models, state_dir=tmp_path / "state", **settings))
    node.lifecycle.live.update(node.registry.models)  # as if the group gave it every partition
    api = create_api(node)
    # Admin actions over stand-in topics: the snapshots topic and the producer record.
    snapshot_topic = StandInTopic(node.store)
    lifecycle = Lifecycle(node.registry, node.store, snapshot_topic, Assignment())
    topics = Topics(*(RecordingFaustTopic() for _ in CONTRACT_TOPICS))
    admin = Admin(node.registry, lifecycle, node.store, snapshot_topic, Publisher(topics))
    audit_topic = RecordingFaustTopic()
    api.dependency_overrides[get_admin] = lambda: admin
    api.dependency_overrides[get_audit] = lambda: AuditTrail(audit_topic)
    transport = httpx.ASGITransport(app=api, client=("198.51.100.7", 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        yield Audited(client, audit_topic)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Audited]:
    async for audited in audited_node(tmp_path, admin_token=TOKEN):
        yield audited


def test_a_fingerprint_is_the_start_of_the_tokens_sha256() -> None:
    assert fingerprint("test") == "9f86d081884c7d65"  # sha256("test") = 9f86d081884c7d65...
    assert fingerprint(None) is None
    assert len(fingerprint(TOKEN) or "") == 16


async def test_a_snapshot_is_audited_with_who_what_and_the_result(
    node: Audited, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="streams.audit"):
        response = await node.client.post("/models/clicks/snapshots", headers=AUTH)
    assert response.status_code == 201
    (entry,) = node.entries()
    assert entry.pop("ts").endswith("+00:00")
    assert entry == {
        "action": "snapshot",
        "model": "clicks",
        "who": {"token_fingerprint": fingerprint(TOKEN), "client": "198.51.100.7",
                "relayed_by": None},
        "result": "ok",
        "status": 201,
        "node": "http://127.0.0.1:8000",
        "detail": {key: response.json()[key] for key in ("version", "offsets", "bytes")},
    }  # fmt: skip
    assert node.audit_topic.sent[0][0] == b"clicks"  # keyed by model, as every topic
    (record,) = caplog.records
    assert record.getMessage() == (
        f"admin snapshot of model 'clicks' by token {fingerprint(TOKEN)} from 198.51.100.7:"
        " ok (201)"
    )
    assert record.__dict__["audit"]["who"] == entry["who"]  # the same fields in the log


async def test_a_promotion_and_a_rollback_record_what_they_did(node: Audited) -> None:
    promoted = await node.client.post("/models/clicks/candidates/tree/promote", headers=AUTH)
    assert promoted.status_code == 200
    restored = await node.client.post("/models/clicks/snapshots/1/restore", headers=AUTH)
    assert restored.status_code == 200
    promotion, restore = node.entries()
    assert (promotion["action"], promotion["result"], promotion["status"]) == ("promote", "ok", 200)
    assert promotion["detail"] == {"candidate": "tree", "from": "default", "to": "tree",
                                   "snapshot_before": 1, "model_version": 2}  # fmt: skip
    assert (restore["action"], restore["result"], restore["status"]) == ("restore", "ok", 200)
    assert restore["detail"] == {"version": 1, "model_version": 3}


async def test_refused_calls_are_audited_with_what_was_presented(node: Audited) -> None:
    assert (await node.client.post("/models/clicks/snapshots")).status_code == 401
    wrong = {"Authorization": "Bearer guess"}
    assert (await node.client.post("/models/clicks/snapshots/1/restore", headers=wrong)
            ).status_code == 401  # fmt: skip
    basic = {"Authorization": "Basic YWRtaW46YWRtaW4="}
    assert (await node.client.post("/models/nope/snapshots", headers=basic)).status_code == 401
    missing, guessed, other_scheme = node.entries()
    assert missing["who"]["token_fingerprint"] is None
    assert missing["result"] == "send Authorization: Bearer <STREAMLEARN_ADMIN_TOKEN>"
    assert (missing["status"], missing["action"], missing["model"]) == (401, "snapshot", "clicks")
    assert guessed["who"]["token_fingerprint"] == fingerprint("guess")
    assert guessed["detail"] == {"version": 1}
    assert other_scheme["who"]["token_fingerprint"] == fingerprint("Basic YWRtaW46YWRtaW4=")
    assert other_scheme["model"] == "nope"  # checked before the model: nothing is revealed


async def test_failed_actions_are_audited_with_the_sentence_the_caller_got(node: Audited) -> None:
    cases = [
        ("/models/nope/snapshots", 404, "unknown model 'nope'"),
        ("/models/clicks/candidates/nobody/promote", 404, "nobody"),
        ("/models/clicks/snapshots/9/restore", 404, "9"),
        ("/models/clicks/snapshots/nine/restore", 422, "invalid request: path.version:"),
    ]
    for path, status, _ in cases:
        assert (await node.client.post(path, headers=AUTH)).status_code == status
    entries = node.entries()
    assert len(entries) == len(cases)
    for entry, (_, status, sentence) in zip(entries, cases, strict=True):
        assert entry["status"] == status and sentence in entry["result"], entry
        assert entry["who"]["token_fingerprint"] == fingerprint(TOKEN)
    assert entries[3]["detail"] == {"version": "nine"}  # as given, not a number


async def test_a_node_without_a_token_audits_the_403(tmp_path: Path) -> None:
    async for node in audited_node(tmp_path):
        response = await node.client.post("/models/clicks/snapshots", headers=AUTH)
        assert response.status_code == 403
        (entry,) = node.entries()
        assert entry["status"] == 403 and entry["result"].startswith("admin routes are disabled")


async def test_reads_are_not_audited(node: Audited) -> None:
    assert (await node.client.get("/models/clicks/snapshots")).status_code == 200
    assert (await node.client.get("/models/clicks/candidates")).status_code == 200
    assert node.entries() == []


async def test_the_token_itself_is_never_written(
    node: Audited, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await node.client.post("/models/clicks/snapshots", headers=AUTH)
        await node.client.post("/models/clicks/snapshots", headers={"Authorization": "Bearer x"})
    written = b"".join(value for _, value in node.audit_topic.sent)
    assert len(node.entries()) == 2 and TOKEN.encode() not in written
    assert TOKEN not in caplog.text


async def test_a_relayed_call_names_the_original_client_and_the_relay(node: Audited) -> None:
    relayed = {**AUTH, FORWARDED_HEADER: "http://10.0.0.1:8000",
               "X-Forwarded-For": "203.0.113.50, 192.0.2.10"}  # fmt: skip
    assert (await node.client.post("/models/clicks/snapshots", headers=relayed)).status_code == 201
    (entry,) = node.entries()
    assert entry["who"] == {
        "token_fingerprint": fingerprint(TOKEN),
        "client": "192.0.2.10",  # the entry the relaying node appended, the last one
        "relayed_by": {"node": "http://10.0.0.1:8000", "address": "198.51.100.7"},
    }


async def test_a_direct_call_cannot_name_another_client(node: Audited) -> None:
    spoofed = {**AUTH, "X-Forwarded-For": "192.0.2.99"}
    await node.client.post("/models/clicks/snapshots", headers=spoofed)
    (entry,) = node.entries()
    assert entry["who"]["client"] == "198.51.100.7" and entry["who"]["relayed_by"] is None


async def test_the_relaying_node_passes_the_clients_address_and_audits_nothing(
    tmp_path: Path,
) -> None:
    ownership = group(two_partitions(), tmp_path)
    peer = FakePeer()
    peers = Peers(ownership, timeout=1.0, transport=httpx.MockTransport(peer))
    inner = Inner()
    middleware = ForwardToOwner(inner, ownership, peers, max_request_bytes=64, session_timeout=10)
    transport = httpx.ASGITransport(app=middleware, client=("198.51.100.7", 50_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        await client.post("/models/theirs/snapshots", headers=AUTH)
        await client.post("/models/theirs/snapshots",
                          headers={**AUTH, "X-Forwarded-For": "203.0.113.50"})  # fmt: skip
    await peers.client.aclose()
    assert inner.scopes == []  # answered by the owner only, so audited there only
    first, second = peer.requests
    assert first.headers["x-forwarded-for"] == "198.51.100.7"
    assert second.headers["x-forwarded-for"] == "203.0.113.50, 198.51.100.7"
    assert first.headers[FORWARDED_HEADER] == ownership.url
