"""Run Apache Kafka 4.x in KRaft mode on this machine, from jars Maven fetches.

The jars come from Maven Central through the small ``pom.xml`` beside this module (Maven
caches them in ``~/.m2``); the broker's data, config, log and pid file live under
``<state dir>/kafka``. ``start`` is idempotent and returns once the broker answers;
``stop`` only stops the process ``start`` launched.

A secure broker (``secure=True``) lives in ``<state dir>/kafka-secure``, so it never shares
formatted storage with a plaintext one: SASL_SSL with SCRAM-SHA-512 users, certificates
from its own CA and Kafka's authorizer (see :mod:`streams.broker.listeners`). It returns
from ``start`` once the service user's ACLs are in force; :meth:`LocalKafka.client_env`
says how a client connects.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from streams.broker import acl
from streams.broker.cluster_id import new_cluster_id
from streams.broker.credentials import (
    ADMIN,
    MECHANISM,
    SERVICE_USER,
    Credentials,
    ensure_credentials,
    scram_argument,
)
from streams.broker.files import write_atomically
from streams.broker.java import require_java
from streams.broker.listeners import plaintext_listeners, secure_listeners
from streams.broker.tls import TlsFiles, ensure_certificates
from streams.learning.errors import BrokerError


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    managed: bool
    detail: str


class LocalKafka:
    """One single-node KRaft broker listening on ``host:port`` (controller on ``port + 1``).

    Parameters
    ----------
    state_dir
        Where the broker's home directory goes.
    host, port
        Where clients connect; the controller listens on ``port + 1``.
    version
        The Apache Kafka release to fetch and run.
    heap
        The JVM heap (``-Xmx`` and ``-Xms``).
    secure
        Listen with SASL_SSL, require SCRAM-SHA-512 logins and authorize with ACLs.
    acl_prefixes
        A secure broker lets the ``streamlearn`` user do anything on the topics and
        consumer groups whose names start with one of these, and nothing else.
    password
        The ``streamlearn`` user's password on a secure broker; drawn at random and stored
        in the broker's home when ``None``. It is fixed when the storage is formatted.
    """

    def __init__(
        self,
        state_dir: Path,
        host: str,
        port: int,
        *,
        version: str,
        heap: str = "512m",
        secure: bool = False,
        acl_prefixes: Iterable[str] = ("streamlearn",),
        password: str | None = None,
    ) -> None:
        self.home = state_dir.resolve() / ("kafka-secure" if secure else "kafka")
        self.host = host
        self.port = port
        self.version = version
        self.heap = heap
        self.secure = secure
        self.acl_prefixes = tuple(acl_prefixes)
        self.password = password
        # Both homes share the (read-only) jars, so --secure needs no second Maven run.
        self.lib = state_dir.resolve() / "kafka" / f"lib-{version}"
        self.data = self.home / "data"
        self.config = self.home / "server.properties"
        self.log = self.home / "broker.log"
        self.pid_file = self.home / "broker.pid"
        self.tls = TlsFiles(self.home / "tls")
        self.credentials_file = self.home / "credentials.json"
        # Kept so the child can be reaped when this process stops the broker it started.
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def status(self) -> BrokerStatus:
        """Whether a broker answers at the bootstrap address, and whether it is ours."""
        pid = self._our_pid()
        up = _port_open(self.host, self.port)
        if pid and up:
            return BrokerStatus(True, pid, self.bootstrap, True, f"running (pid {pid})")
        if pid:
            return BrokerStatus(False, pid, self.bootstrap, True, f"starting (pid {pid})")
        if up:
            return BrokerStatus(
                True,
                None,
                self.bootstrap,
                False,
                "a broker not started by streamlearn answers here",
            )
        return BrokerStatus(False, None, self.bootstrap, False, "not running")

    def start(self, timeout: float = 90.0) -> BrokerStatus:
        """Start the broker unless one already answers; return once it accepts connections.

        A secure broker is up once the service user's ACLs are in force; they are granted
        again (a no-op if present) by every ``start``, also of a broker already running.
        """
        deadline = time.monotonic() + timeout
        current = self.status()
        if current.running and not self.secure:
            return current
        if current.running and not current.managed:
            raise BrokerError(
                f"another broker already listens at {self.bootstrap}; stop it (`streamlearn"
                " kafka stop` stops a plaintext one it started) or choose another port"
            )
        process = None
        if current.pid is None:
            java = require_java()
            self._fetch_jars()
            if self.secure:
                self._prepare_security()
            self._write_config()
            self._format(java)
            process = self._process = self._launch(java)
        status = current if current.running else self._wait_until_up(timeout, process)
        if self.secure:
            acl.grant(
                self._login(ADMIN),
                SERVICE_USER,
                self.acl_prefixes,
                max(deadline - time.monotonic(), 5.0),
            )
        return status

    def client_env(self, user: str = SERVICE_USER) -> dict[str, str]:
        """The ``STREAMLEARN_KAFKA_*`` settings with which ``user`` reaches this broker.

        The values include the user's password: show them to the operator, never log them.
        """
        env = {"STREAMLEARN_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap}
        if not self.secure:
            return {**env, "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
        return {
            **env,
            "STREAMLEARN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMLEARN_KAFKA_SASL_MECHANISM": MECHANISM,
            "STREAMLEARN_KAFKA_SASL_USERNAME": user,
            "STREAMLEARN_KAFKA_SASL_PASSWORD": self._credentials().password(user),
            "STREAMLEARN_KAFKA_SSL_CAFILE": str(self.tls.ca),
        }

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the broker this class started; ``False`` if there was none to stop."""
        pid = self._our_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if self._process is not None:
            self._process.wait()
            self._process = None
        self.pid_file.unlink(missing_ok=True)
        return True

    def _fetch_jars(self) -> None:
        if self.lib.is_dir() and any(self.lib.glob("kafka_2.13-*.jar")):
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven (mvn) is needed to fetch Apache Kafka's jars from Maven Central;"
                " install it (e.g. `apt-get install maven`) and try again"
            )
        self.lib.parent.mkdir(parents=True, exist_ok=True)
        partial = self.lib.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        pom = resources.files("streams.broker").joinpath("pom.xml")
        with resources.as_file(pom) as pom_path:
            result = subprocess.run(
                [mvn, "-q", "-B", "-f", str(pom_path), "dependency:copy-dependencies",
                 f"-Dkafka.version={self.version}", "-DincludeScope=runtime",
                 f"-DoutputDirectory={partial}"],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise BrokerError("Maven could not fetch Apache Kafka:\n" + "\n".join(tail))
        partial.rename(self.lib)

    def _prepare_security(self) -> None:
        """Certificates and users, made once and kept: before the storage is formatted."""
        ensure_certificates(self.tls.directory, self.host)
        formatted = (self.data / "meta.properties").exists()
        ensure_credentials(self.credentials_file, self.password, formatted=formatted)

    def _credentials(self) -> Credentials:
        if not self.credentials_file.exists():
            raise BrokerError(f"no secure broker was ever started in {self.home}")
        # With the password given, so one that differs from the broker's is caught.
        formatted = (self.data / "meta.properties").exists()
        return ensure_credentials(self.credentials_file, self.password, formatted=formatted)

    def _login(self, user: str) -> acl.Login:
        context = ssl.create_default_context(cafile=str(self.tls.ca))
        password = self._credentials().password(user)
        return acl.Login(self.host, self.port, user, password, MECHANISM, context)

    def _write_config(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        if self.secure:
            listeners = secure_listeners(self.host, self.port, self._credentials(), self.tls)
        else:
            listeners = plaintext_listeners(self.host, self.port)
        text = "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                *listeners,
                f"log.dirs={self.data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                # A fresh consumer group joins at once instead of waiting 3 s.
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=false",
                "",
            ]
        )
        # A secure broker's config holds passwords.
        write_atomically(self.config, text.encode(), private=self.secure)

    def _format(self, java: str) -> None:
        if (self.data / "meta.properties").exists():
            return
        users = []
        if self.secure:
            credentials = self._credentials()
            for name in (ADMIN, SERVICE_USER):
                users += ["--add-scram", scram_argument(name, credentials.password(name))]
        outputs = []
        for _ in range(2):  # once more after a failure, with a fresh id
            cluster_id = new_cluster_id()
            result = subprocess.run(
                [java, "-cp", f"{self.lib}/*", "kafka.tools.StorageTool", "format",
                 "-t", cluster_id, "-c", str(self.config), "--ignore-formatted", *users],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if result.returncode == 0:
                return
            outputs.append(f"{result.stdout}{result.stderr}".strip())
            time.sleep(1)
        raise BrokerError("formatting the KRaft log directory failed:\n" + "\n".join(outputs))

    def _launch(self, java: str) -> subprocess.Popen[bytes]:
        log4j = resources.files("streams.broker").joinpath("log4j2.properties")
        with self.log.open("ab") as log, resources.as_file(log4j) as log4j_path:
            process = subprocess.Popen(
                [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                 f"-Dlog4j2.configurationFile={log4j_path}", "-Dstreamlearn.broker=1",
                 "-cp", f"{self.lib}/*", "kafka.Kafka", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        return process

    def _wait_until_up(
        self, timeout: float, process: subprocess.Popen[bytes] | None
    ) -> BrokerStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Right after launch /proc still shows the forking Python: ask the child itself.
            exited = process.poll() is not None if process else self._our_pid() is None
            if exited:
                raise BrokerError(
                    f"the broker exited during start-up; see {self.log}:\n{self._log_tail()}"
                )
            if _port_open(self.host, self.port):
                return self.status()
            time.sleep(0.25)
        raise BrokerError(
            f"the broker did not accept connections within {timeout:.0f} s; see {self.log}"
        )

    def _our_pid(self) -> int | None:
        """The pid in the pid file if that process is still our broker."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except FileNotFoundError:
            cmdline = ""
        if _alive(pid) and "kafka.Kafka" in cmdline and str(self.config) in cmdline:
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
