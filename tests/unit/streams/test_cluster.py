"""The Faust app's Kafka consumer, as the worker builds it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from streams.app import create_faust_app
from streams.cluster import FETCH_MAX_WAIT_MS, _ConsumerThread
from streams.settings import Settings


async def test_the_worker_consumer_waits_at_most_ten_ms_for_a_fetch(tmp_path: Path) -> None:
    # Faust hard-codes 1,500 ms; with one fetch in flight per broker, a partition left out of
    # it waited that long, and latency at 1,000 single-event messages/s jumped to seconds.
    app = create_faust_app(Settings(state_dir=tmp_path, kafka_bootstrap_servers="127.0.0.1:1"))
    # The worker's consumer makes its Kafka consumer in a thread of this class...
    made_by = app.transport.Consumer._new_consumer_thread
    assert made_by.__qualname__ == "_RestoringConsumer._new_consumer_thread"
    # ... which is not built here: it would start a loop of its own.
    thread = _ConsumerThread.__new__(_ConsumerThread)
    thread.app = app
    thread.consumer = SimpleNamespace(in_transaction=False)
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 10
        assert consumer._group_id == app.conf.id  # still Faust's worker consumer otherwise
    finally:
        await consumer.stop()  # never started: nothing was connected
