"""Whether a Kafka broker answers at the bootstrap servers, asked before a node starts.

Without the check, a worker started with no broker running fails deep inside aiokafka with
a ``KafkaConnectionError`` traceback that names neither the setting nor the fix. The check
waits a bounded time, since a broker started at the same moment (``docker compose up``, a
test session) takes a few seconds to listen, and then stops with one line that says where
it looked and what to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from streams.learning.errors import BrokerUnreachable

#: Pause between two attempts: short, so a worker goes on as soon as a starting broker listens.
RETRY_INTERVAL_SECONDS = 1.0
#: The longest one attempt may take: a firewalled address drops packets rather than refuses,
#: and the connection attempt would otherwise hang for the whole timeout.
ATTEMPT_TIMEOUT_SECONDS = 5.0


async def wait_for_broker(bootstrap_servers: str, timeout: float) -> None:
    """Return once a broker at ``bootstrap_servers`` answers a metadata request.

    Each attempt bootstraps an aiokafka client (connect, then one ``Metadata`` request,
    exactly what a consumer or producer does first) and closes it again. While attempts
    fail, aiokafka logs an error per attempt; those are silenced here, since the one line of
    `BrokerUnreachable` says all they would.

    Parameters
    ----------
    bootstrap_servers
        ``host:port[,host:port...]``, as in ``STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS``.
    timeout
        Seconds to keep trying before giving up.

    Raises
    ------
    BrokerUnreachable
        No broker answered within ``timeout``; the message names the address and the fix.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with _quiet("aiokafka"):
        while True:
            remaining = deadline - loop.time()
            attempt = min(ATTEMPT_TIMEOUT_SECONDS, max(remaining, 0.1))
            if await _answers(bootstrap_servers, attempt):
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.sleep(min(RETRY_INTERVAL_SECONDS, remaining))
    raise BrokerUnreachable(
        f"no Kafka broker answers at {bootstrap_servers} (waited {timeout:g} s); start a"
        " local one with `streamlearn kafka start`, or set STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"
    )


async def _answers(bootstrap_servers: str, timeout: float) -> bool:
    """One attempt: ``True`` if some bootstrap server answered a metadata request."""
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    try:
        # The request timeout bounds each connection and request; wait_for bounds the sum
        # over several bootstrap servers.
        await asyncio.wait_for(client.bootstrap(), timeout)
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await client.close()
    return True


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Drop everything below CRITICAL from logger ``name`` (and its children) for a while."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
