"""What learning and the HTTP API share: learning yields to the requests being answered.

Both run on the worker's one event loop. The HTTP side counts the requests in flight
(:meth:`RequestGate.enter` and :meth:`RequestGate.leave`); the learn loop, between two slices
of learning, calls :meth:`RequestGate.pause`, which lets the loop run and keeps yielding while
requests are in flight.
"""

from __future__ import annotations

import asyncio
import time

#: A request read from its socket enters the app a couple of loop iterations later: a pause
#: gives it this many, then yields while requests are in flight, for at most
#: ``MAX_PAUSE_SECONDS`` (a request needs several loop iterations).
PAUSE_ITERATIONS = 3
MAX_PAUSE_SECONDS = 0.05


class RequestGate:
    """The HTTP requests being answered right now; learning yields to them."""

    def __init__(self) -> None:
        self.inflight = 0

    def enter(self) -> None:
        """A request came in."""
        self.inflight += 1

    def leave(self) -> None:
        """A request was answered (or failed)."""
        self.inflight -= 1

    async def pause(self) -> None:
        """Let the loop run, then keep yielding while requests are in flight."""
        for _ in range(PAUSE_ITERATIONS):
            await asyncio.sleep(0)
        deadline = time.perf_counter() + MAX_PAUSE_SECONDS
        while self.inflight and time.perf_counter() < deadline:
            await asyncio.sleep(0)
