"""Moving the misplaced copies of a take: coalesced per partition, in order, within a size."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from streams.agents.move import Mover
from streams.learning.records import Reroute
from tests.unit.streams.factories import RecordingFaustTopic


def copy(i: int, partition: int = 3, batch: int = 1, offset: int | None = None) -> Reroute:
    elements = [{"event_id": f"{i}.{j}", "model": "m", "features": {"x": j}} for j in range(batch)]
    value = orjson.dumps(elements[0] if batch == 1 else elements)
    return Reroute(partition, b"m", value, f"ev:0:{i if offset is None else offset}")


async def test_copies_to_one_partition_become_one_array_in_their_order() -> None:
    topic = RecordingFaustTopic()
    mover = Mover(limit=1 << 20)
    mover.add([copy(0), copy(1, batch=3)], topic)
    mover.add([copy(2, partition=5)], topic)
    mover.add([copy(3)], topic)
    await mover.delivered()
    placed = zip(topic.sent, topic.placed, strict=True)
    sent = {partition: orjson.loads(value) for (_, value), (partition, _) in placed}
    assert [e["event_id"] for e in sent[3]] == ["0.0", "1.0", "1.1", "1.2", "3.0"]
    assert sent[5]["event_id"] == "2.0"  # alone: as it came, an object
    headers = {p: dict(h or []) for p, h in topic.placed}
    assert headers[3]["streamlearn-rerouted-from"] == b"ev:0:0-3"
    await mover.delivered()  # nothing new: nothing sent again
    assert len(topic.sent) == 2


@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=60), limit=st.integers(200, 3000))
async def test_no_message_exceeds_the_limit_and_nothing_is_lost(
    sizes: list[int], limit: int
) -> None:
    topic = RecordingFaustTopic()
    mover = Mover(limit)
    copies = [copy(i, batch=n) for i, n in enumerate(sizes)]
    mover.add(copies, topic)
    await mover.delivered()
    ids = []
    for _, value in topic.sent:
        single = len(value) > limit
        assert not single or orjson.loads(value) in [orjson.loads(c.value) for c in copies]
        decoded = orjson.loads(value)
        ids += [e["event_id"] for e in (decoded if isinstance(decoded, list) else [decoded])]
    assert ids == [f"{i}.{j}" for i, n in enumerate(sizes) for j in range(n)]
