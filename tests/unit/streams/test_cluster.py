"""The Faust app's Kafka consumer, as the worker builds it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from streams.app import create_faust_app
from streams.cluster import FETCH_MAX_WAIT_MS
from streams.settings import Settings


# Building Faust's consumer thread without running it leaves a loop of its own for the
# garbage collector; that is the test's, not the worker's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_the_worker_consumer_waits_at_most_ten_ms_for_a_fetch(tmp_path: Path) -> None:
    # Faust hard-codes 1,500 ms; with one fetch in flight per broker, a partition left out of
    # it waited that long, and latency at 1,000 single-event messages/s jumped to seconds.
    app = create_faust_app(Settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"))
    thread = app.consumer._new_consumer_thread()
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 10
        assert consumer._group_id == app.conf.id  # still Faust's worker consumer otherwise
    finally:
        await consumer.stop()  # never started: nothing was connected
        for loop in {thread.loop, thread.thread_loop} - {asyncio.get_running_loop()}:
            loop.close()  # the thread's own loops, never run
