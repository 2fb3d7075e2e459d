"""Every kind of malformed event lands in dead-letters with its reason; the rest is learned."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.integration.kafka_io import consume, produce, run

pytestmark = pytest.mark.integration

MODELS = """
[models.clicks]
task = "binary"
pipeline = "linear_model.LogisticRegression()"

[models.prices]
task = "regression"
pipeline = "linear_model.LinearRegression()"
"""


def good(i: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"g{i}",
            "model": "clicks",
            "features": {"x": i, "city": "Oslo"},
            "label": True,
        }
    )


BAD: list[tuple[bytes, str]] = [
    (b'{"event_id": "b1", "model": "clicks", "features": ', "not valid JSON"),
    (b'{"model": "clicks", "features": {"x": 1}}', "event_id must be a string"),
    (b'{"event_id": "b3", "model": "clicks", "features": [1, 2]}', "features must be an object"),
    (b'{"event_id": "b4", "model": "clicks", "features": {"x": {"y": 1}}}', "features.x must be"),
    (b'{"event_id": "b5", "model": "nobody", "features": {"x": 1}}', "unknown model 'nobody'"),
    (b'{"event_id": "b6", "model": "clicks", "features": {"x": 1e300}, "label": true}',
     "larger in magnitude than 1e+100"),
    (b'{"event_id": "b7", "model": "clicks", "features": {"x": 1}, "ts": "someday"}',
     "ts must be an RFC 3339 string"),
    (orjson.dumps({"event_id": "b8", "model": "clicks", "features": {"x": "y" * 3000}}),
     "over the limit of 2048 bytes"),
    (b'[{"event_id": "b9", "model": "clicks", "features": {"x": 1}, "label": true}, 42]',
     "[1].event must be a JSON object"),
]  # fmt: skip


def test_malformed_events_are_dead_lettered_and_the_good_ones_learned(start_node: Any) -> None:
    node = start_node(MODELS, STREAMLEARN_MAX_EVENT_BYTES="2048")
    bootstrap = node.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]
    values = [good(0)]
    for i, (bad, _) in enumerate(BAD, start=1):
        values += [bad, good(i)]
    run(produce(bootstrap, node.topic("events"), values, key=b"clicks"))
    wrong_label = b'{"event_id": "p1", "model": "prices", "features": {"x": 1}, "label": "high"}'
    run(produce(bootstrap, node.topic("events"), [wrong_label], key=b"prices"))
    # Keyed "clicks", so not on the partition of prices: moved there and learned, not lost.
    misplaced = b'{"event_id": "p2", "model": "prices", "features": {"x": 1}, "label": 2.5}'
    run(produce(bootstrap, node.topic("events"), [misplaced], key=b"clicks"))

    # 10 good events, plus the valid first element of the mixed batch.
    state = node.wait_for("clicks", "n_learned", len(BAD) + 2)
    letters = run(consume(bootstrap, node.topic("dead-letters"), len(BAD) + 1))
    assert len(letters) == len(BAD) + 1
    by_payload = {letter["payload"]: letter for letter in letters}
    for bad, reason in [*BAD, (wrong_label, "label 'high' does not fit 'prices'")]:
        letter = by_payload[bad.decode()]
        assert reason in letter["error"], (reason, letter["error"])
        assert letter["topic"] == node.topic("events")
        assert isinstance(letter["offset"], int)
    assert node.get("/healthz").status_code == 200
    assert node.get("/readyz").status_code == 200
    # Dead letters naming a known model are counted on it; the rest on the node.
    prices = node.wait_for("prices", "n_learned", 1)
    assert prices["n_dead_letters"] == 1 and prices["n_rerouted"] == 1
    assert state["n_dead_letters"] >= 1
    prometheus = node.get("/metrics").text
    assert f"streamlearn_dead_letters_node_total {float(len(BAD) + 1)}" in prometheus
