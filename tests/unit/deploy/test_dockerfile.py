"""The Dockerfile cannot be built here (no Docker engine), so it is read and checked: a fixed
non-root user, the one the Kubernetes manifests run as, a health check on /healthz, and the
node as the default command."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.routing import APIRoute

from app.routes import health
from streams.settings import Settings
from tests.unit.deploy.manifests import BASE, ROOT, pod_spec, render


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def arguments(keyword: str) -> list[str]:
    return [args for kw, args in instructions() if kw == keyword]


def environment() -> dict[str, str]:
    pairs = (pair.partition("=") for args in arguments("ENV") for pair in shlex.split(args))
    return {name: value for name, _, value in pairs}


def test_runs_as_the_fixed_non_root_user_of_the_manifests() -> None:
    *_, user = arguments("USER")
    uid, _, gid = user.partition(":")
    # Numeric, so that runAsNonRoot can be checked without the image's /etc/passwd.
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0
    context = pod_spec(render(BASE))["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (
        int(uid),
        int(gid),
        int(gid),
    )
    (run,) = arguments("RUN")
    assert f"--uid {uid}" in run and f"--gid {gid}" in run
    # USER comes after the step that needs root and before the command.
    keywords = [kw for kw, _ in instructions()]
    assert keywords.index("RUN") < len(keywords) - 1 - keywords[::-1].index("USER")
    assert keywords.index("USER") < keywords.index("CMD")


def test_the_state_directory_is_the_users_and_the_only_one_written() -> None:
    env = environment()
    uid, _, gid = arguments("USER")[-1].partition(":")
    (run,) = arguments("RUN")
    assert env["STREAMLEARN_STATE_DIR"] == "/data"
    assert f"-o {uid} -g {gid}" in run and run.rstrip().endswith("/data")
    # A home in /tmp, and no bytecode written next to the code: a read-only root is enough.
    assert env["HOME"] == "/tmp"  # noqa: S108 - the image's setting, not a file opened here
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"


def test_environment_names_are_settings_and_the_port_is_exposed() -> None:
    env = environment()
    fields = {f"STREAMLEARN_{field.upper()}" for field in Settings.model_fields}
    assert {name for name in env if name.startswith("STREAMLEARN_")} <= fields
    assert env["STREAMLEARN_HTTP_HOST"] == "0.0.0.0"
    assert arguments("EXPOSE") == [env["STREAMLEARN_HTTP_PORT"]]


def test_the_healthcheck_asks_healthz_with_python() -> None:
    (check,) = arguments("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert {"--interval", "--timeout", "--start-period", "--retries"} <= {
        option.partition("=")[0] for option in options.split()
    }
    # Slim images have no curl: Python's urllib, and the port the node listens on.
    assert command.startswith("python -c ") and "urllib.request.urlopen(" in command
    assert "/healthz" in command and "${STREAMLEARN_HTTP_PORT:-8000}" in command
    routes = {route.path for route in health.router.routes if isinstance(route, APIRoute)}
    assert "/healthz" in routes
    assert Settings.model_fields["http_port"].default == 8000


@contextmanager
def serving(status: int) -> Iterator[int]:
    """An HTTP server on a free loopback port answering ``status`` to GET /healthz."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join()


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)])
def test_the_healthcheck_exits_as_docker_expects(status: int, exit_code: int) -> None:
    """Docker runs the shell form with /bin/sh -c: 0 is healthy, 1 unhealthy (2 is reserved)."""
    (check,) = arguments("HEALTHCHECK")
    command = check.partition("CMD ")[2]
    # `python` as in the image: this interpreter, which has no more than the standard library
    # the command needs.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    with serving(status) as port:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            env={"PATH": path, "STREAMLEARN_HTTP_PORT": str(port)},
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == exit_code, done.stderr


def test_one_image_two_commands_the_node_by_default() -> None:
    (cmd,) = arguments("CMD")
    assert json.loads(cmd) == ["streamlearn", "worker"]
    assert not arguments("ENTRYPOINT")  # so that `streamlearn replay ...` replaces the command
