"""Learning yields to HTTP requests in flight, for a bounded time."""

from __future__ import annotations

import asyncio
import time

from streams.gate import MAX_PAUSE_SECONDS, RequestGate


async def test_a_pause_waits_for_the_requests_in_flight() -> None:
    gate = RequestGate()
    gate.enter()

    async def answer() -> None:
        for _ in range(5):
            await asyncio.sleep(0)
        gate.leave()

    task = asyncio.create_task(answer())
    await gate.pause()
    assert gate.inflight == 0 and task.done()


async def test_a_pause_is_bounded_when_requests_never_end() -> None:
    gate = RequestGate()
    gate.enter()
    started = time.perf_counter()
    await gate.pause()
    assert MAX_PAUSE_SECONDS <= time.perf_counter() - started < 1.0
    assert gate.inflight == 1
