"""The Faust floor: a Faust agent that does nothing but count messages, taking them as the
node's learn agent does (``stream.take_events(TAKE_MAX, within=TAKE_WITHIN)``, acked per
take), so that the floor pays Faust's per-message and per-take costs as the node does.

Run by ``bench/run.py`` as its own process:
    python bench/floor.py BOOTSTRAP TOPIC COUNT
It prints one JSON line ``{"messages": n, "seconds": s}`` (first take to last) and exits.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import faust
import orjson

from streams.agents.learn import TAKE_MAX, TAKE_WITHIN
from streams.credentials import broker_credentials
from streams.settings import Settings


def main() -> None:
    bootstrap, topic_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = faust.App(
        f"floor-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        # The security of the environment's STREAMLEARN_KAFKA_* settings, as a node has.
        broker_credentials=broker_credentials(Settings()),
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        store="memory://",
        datadir=f"/tmp/streamlearn-floor-{os.getpid()}",  # noqa: S108 (a throwaway bench dir)
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, value_serializer="raw")
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic)  # type: ignore[untyped-decorator]
    async def count_messages(stream: Any) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN):
            if seen["n"] == 0:
                seen["first"] = time.perf_counter()
            seen["n"] += len(events)
            if seen["n"] >= count:
                elapsed = time.perf_counter() - seen["first"]
                # The worker redirects sys.stdout to its logger: write to the descriptor.
                os.write(1, orjson.dumps({"messages": count, "seconds": elapsed}) + b"\n")
                os._exit(0)

    faust.Worker(app, loglevel="error").execute_from_commandline()


if __name__ == "__main__":
    main()
