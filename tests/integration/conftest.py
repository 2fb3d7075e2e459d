"""A real Apache Kafka broker for the session, and worker processes to test against."""

from __future__ import annotations

import fcntl
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.broker.local import LocalKafka
from streams.credentials import client_options
from streams.settings import Settings

pytestmark = pytest.mark.integration

#: What mode (under Faust) logs when an agent raises: never expected, whatever the data.
AGENT_CRASH = "Crashed reason="
KAFKA_VERSION = os.environ.get("STREAMLEARN_KAFKA_VERSION", "4.1.1")


def free_port(pairs: bool = False) -> int:
    """A free TCP port on loopback (and the next one too, when ``pairs``).

    Pairs (the broker and its controller) are taken below Linux's ephemeral range (32768
    and up): a port the kernel picked for us is free now, but its neighbour may be handed to
    any outgoing connection before the broker binds it.
    """
    if not pairs:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        return port
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_000)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


@contextmanager
def one_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Held while a broker starts: with ``pytest -n``, each worker starts its own brokers,
    and the first start runs Maven, which must not fill its local repository twice at once."""
    shared = tmp_path_factory.getbasetemp().parent  # the same for every worker of a run
    with open(shared / "broker-start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A single-node KRaft broker started for this test session (for each worker of
    ``pytest -n``)."""
    state = tmp_path_factory.mktemp("kafka-state")
    broker = LocalKafka(state, "127.0.0.1", free_port(pairs=True), version=KAFKA_VERSION)
    with one_at_a_time(tmp_path_factory):
        broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def secure_kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A secure broker for this test session: SASL_SSL with SCRAM-SHA-512, and ACLs that
    let the user ``streamlearn`` use the topics and groups whose names start with ``sl``.

    ``client_env()`` gives its client settings; ``client_env("admin")`` a super user's.
    """
    state = tmp_path_factory.mktemp("kafka-secure-state")
    broker = LocalKafka(
        state,
        "127.0.0.1",
        free_port(pairs=True),
        version=KAFKA_VERSION,
        secure=True,
        acl_prefixes=("sl",),
    )
    with one_at_a_time(tmp_path_factory):
        broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def kafka(kafka_broker: LocalKafka) -> str:
    """Bootstrap address of the session's broker."""
    return kafka_broker.bootstrap


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """SIGTERM, and SIGKILL if ``process`` has not exited within ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class NodeProcess:
    """A ``streamlearn worker`` subprocess with its own topics, models file and port."""

    def __init__(
        self, workdir: Path, bootstrap: str, models_toml: str, prefix: str | None = None,
        **env: str,
    ) -> None:  # fmt: skip
        self.workdir = workdir
        self.port = free_port()
        #: Nodes with the same prefix share topics and app id: they form one group.
        self.prefix = prefix or f"t{uuid.uuid4().hex[:8]}."
        workdir.mkdir(parents=True, exist_ok=True)
        models = workdir / "models.toml"
        models.write_text(models_toml)
        self.env = {
            **os.environ,
            "STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "STREAMLEARN_TOPIC_PREFIX": self.prefix,
            "STREAMLEARN_APP_ID": f"{self.prefix}app",
            "STREAMLEARN_MODELS": str(models),
            "STREAMLEARN_STATE_DIR": str(workdir / "state"),
            "STREAMLEARN_HTTP_PORT": str(self.port),
            "STREAMLEARN_METRICS_INTERVAL_SECONDS": "1",
            **env,
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, nothing is flushed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        terminate(self.process)

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @property
    def bootstrap(self) -> str:
        return self.env["STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def client_options(self) -> dict[str, Any]:
        """The security arguments of an aiokafka client reaching this node's broker as the
        node does (``**node.client_options``)."""
        kafka = {k.removeprefix("STREAMLEARN_").lower(): v for k, v in self.env.items()
                 if k.startswith("STREAMLEARN_KAFKA_")}  # fmt: skip
        return dict(client_options(Settings.model_validate(kafka)))

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]

    def wait_for(
        self, name: str, counter: str, value: int, timeout: float = 60.0
    ) -> dict[str, object]:
        """Poll ``GET /models/{name}`` until ``counter`` reaches ``value``."""
        deadline = time.monotonic() + timeout
        state: dict[str, object] = {}
        while time.monotonic() < deadline:
            state = self.get(f"/models/{name}").json()
            if state[counter] == value:
                return state
            if isinstance(state[counter], int) and state[counter] > value:  # type: ignore[operator]
                break
            time.sleep(0.2)
        raise AssertionError(f"{name}.{counter} = {state.get(counter)}, expected {value}")


class NodeFactory:
    """``factory(models_toml, join=None, **env)`` returns a ready :class:`NodeProcess`; with
    ``join=other`` it joins ``other``'s group (same topics and app id, its own port and state
    directory). Every node it started is stopped at the end, and its log checked."""

    def __init__(self, broker: LocalKafka, workdir: Path, prefix_start: str = "t") -> None:
        self.broker = broker
        self.workdir = workdir
        self.prefix_start = prefix_start
        self.nodes: list[NodeProcess] = []

    def __call__(
        self, models_toml: str, join: NodeProcess | None = None, **env: str
    ) -> NodeProcess:
        prefix = join.prefix if join else f"{self.prefix_start}{uuid.uuid4().hex[:8]}."
        node = NodeProcess(self.workdir / f"node{len(self.nodes)}", self.broker.bootstrap,
                           models_toml, prefix, **{**self.broker.client_env(), **env})  # fmt: skip
        self.nodes.append(node)
        node.start()
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()
        crashed = [n.log for n in self.nodes if AGENT_CRASH in n.log.read_text(errors="replace")]
        assert not crashed, f"a Faust agent crashed: see {crashed}"


@pytest.fixture
def start_node(kafka_broker: LocalKafka, tmp_path: Path) -> Iterator[NodeFactory]:
    """Nodes on the session's plaintext broker."""
    factory = NodeFactory(kafka_broker, tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def start_secure_node(secure_kafka_broker: LocalKafka, tmp_path: Path) -> Iterator[NodeFactory]:
    """Nodes on the session's SASL_SSL broker, as its user ``streamlearn`` (topic prefixes
    and app ids start with ``sl``, inside the user's ACL grant)."""
    factory = NodeFactory(secure_kafka_broker, tmp_path, prefix_start="sl")
    yield factory
    factory.stop_all()
