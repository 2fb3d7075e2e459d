"""``streamlearn models``: the registry from the command line, through a node's admin routes.

``apply FILE`` makes the registry what the models file declares (declarative and idempotent:
it prints the difference, then deploys, changes and retires what differs; applied twice, the
second run changes nothing); ``list`` shows every model with its spec version; ``delete NAME``
retires one.

Examples
--------
>>> from streams.learning.catalog import spec_from_fields
>>> linear = {"task": "regression", "pipeline": "linear_model.LinearRegression()"}
>>> running = {"a": spec_from_fields("a", linear), "b": spec_from_fields("b", linear)}
>>> wanted = {"a": spec_from_fields("a", {**linear, "snapshot_every": 5}),
...           "c": spec_from_fields("c", linear)}
>>> for step in plan(running, wanted):
...     print(step.line())
~ a: snapshot_every (in place)
- b (retire)
+ c (deploy)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from streams.learning.catalog import spec_from_fields
from streams.learning.changes import changed_fields, classify
from streams.learning.errors import StreamlearnError
from streams.learning.spec import ModelSpec
from streams.settings import Settings


@dataclass(frozen=True, slots=True)
class Step:
    """One difference between the registry and the file, and what applying it does."""

    action: Literal["deploy", "change", "retire"]
    name: str
    spec: ModelSpec | None = None
    detail: str = ""

    def line(self) -> str:
        if self.action == "deploy":
            return f"+ {self.name} (deploy)"
        if self.action == "retire":
            return f"- {self.name} (retire)"
        return f"~ {self.name}: {self.detail}"


def plan(running: dict[str, ModelSpec], wanted: dict[str, ModelSpec]) -> list[Step]:
    """What makes the registry ``running`` into ``wanted``, by model name."""
    steps = []
    for name in sorted(set(running) | set(wanted)):
        old, new = running.get(name), wanted.get(name)
        if old is None and new is not None:
            steps.append(Step("deploy", name, new))
        elif new is None:
            steps.append(Step("retire", name))
        elif old is not None and old != new:
            kind = "rebuild" if classify(old, new) == "rebuild" else "in place"
            steps.append(
                Step("change", name, new, f"{', '.join(changed_fields(old, new))} ({kind})")
            )
    return steps


class RegistryClient:
    """The admin routes of the node at ``STREAMLEARN_API_URL``, with the admin token."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        token = settings.admin_token.get_secret_value() if settings.admin_token else ""
        self.base = api_url(settings)
        self.client = httpx.Client(
            base_url=self.base,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
            transport=transport,
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            answer = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StreamlearnError(f"no node answers at {self.base}: {exc}") from None
        if answer.status_code >= 400:
            raise StreamlearnError(
                f"{method} {path}: the node answered {answer.status_code}: {answer.text}"
            )
        return answer.json()

    def specs(self) -> dict[str, ModelSpec]:
        """The current spec of every deployed model."""
        return {
            model["name"]: spec_from_fields(
                model["name"], {k: v for k, v in model["spec"].items() if k != "name"}
            )
            for model in self._call("GET", "/models")
        }

    def versions(self) -> list[dict[str, Any]]:
        """Every deployed model's current version (``GET /models/{name}/spec``)."""
        names = [model["name"] for model in self._call("GET", "/models")]
        return [self._call("GET", f"/models/{name}/spec") for name in names]

    def deploy(self, spec: ModelSpec) -> dict[str, Any]:
        answer: dict[str, Any] = self._call(
            "PUT", f"/models/{spec.name}", json=spec.model_dump(mode="json", exclude={"name"})
        )
        return answer

    def retire(self, name: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("DELETE", f"/models/{name}")
        return answer


def api_url(settings: Settings) -> str:
    """The node the CLI talks to: ``STREAMLEARN_API_URL``, or this machine's node."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    host = "127.0.0.1" if settings.http_host in ("0.0.0.0", "::") else settings.http_host  # noqa: S104
    return f"http://{host}:{settings.http_port}"
