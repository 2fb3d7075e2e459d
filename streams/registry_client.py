"""``streamlearn models``: the registry from the command line, through a node's admin routes.

``apply FILE`` makes the registry what the models file declares (declarative and idempotent:
it prints the difference, then deploys, changes and retires what differs; applied twice, the
second run changes nothing). Its ``[templates.NAME]`` tables are deployed and changed too; a
template missing from the file is left as it is, and so are the models templates made.
``list`` shows every model with its spec version; ``delete NAME`` retires one.

Examples
--------
>>> from streams.learning.catalog import version_from_fields as parse
>>> linear = {"task": "regression", "pipeline": "linear_model.LinearRegression()"}
>>> running = {"a": parse("a", linear), "b": parse("b", linear)}
>>> wanted = {"a": parse("a", {**linear, "snapshot_every": 5}), "c": parse("c", linear)}
>>> for step in plan(running, wanted):
...     print(step.line())
~ a: snapshot_every (in place)
- b (retire)
+ c (deploy)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from streams.learning.catalog import spec_from_fields, version_from_fields
from streams.learning.changes import changed_fields, classify
from streams.learning.errors import StreamlearnError
from streams.learning.spec import ModelSpec
from streams.learning.templates import Template
from streams.settings import Settings

#: A model's spec, or a template's with its key field and how many models it may make.
Versioned = tuple[ModelSpec, Template | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One difference between the registry and the file, and what applying it does."""

    action: Literal["deploy", "change", "retire"]
    name: str
    spec: Versioned | None = None
    detail: str = ""

    def line(self) -> str:
        if self.action == "deploy":
            return f"+ {self.name} (deploy)"
        if self.action == "retire":
            return f"- {self.name} (retire)"
        return f"~ {self.name}: {self.detail}"


def plan(running: dict[str, Versioned], wanted: dict[str, Versioned]) -> list[Step]:
    """What makes the registry ``running`` into ``wanted``, by name."""
    steps = []
    for name in sorted(set(running) | set(wanted)):
        old, new = running.get(name), wanted.get(name)
        if old is None and new is not None:
            steps.append(Step("deploy", name, new))
        elif new is None:
            steps.append(Step("retire", name))
        elif old is not None and old != new:
            fields = changed_fields(old[0], new[0])
            before, after = (t.as_dict() if t else {} for t in (old[1], new[1]))
            fields += sorted(k for k in {*before, *after} if before.get(k) != after.get(k))
            kind = "rebuild" if classify(old[0], new[0]) == "rebuild" else "in place"
            steps.append(Step("change", name, new, f"{', '.join(fields)} ({kind})"))
    return steps


def admin_client(settings: Settings, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An HTTP client of the node at ``STREAMLEARN_API_URL`` that sends the admin token."""
    token = settings.admin_token.get_secret_value() if settings.admin_token else ""
    return httpx.Client(
        base_url=api_url(settings),
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
        transport=transport,
    )


class RegistryClient:
    """The admin routes of the node at ``STREAMLEARN_API_URL``, with the admin token."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.base = api_url(settings)
        self.client = admin_client(settings, transport)

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

    def specs(self, templates: Iterable[str] = ()) -> dict[str, Versioned]:
        """The current spec of every deployed model (not those templates made), and of each
        of ``templates`` that is deployed."""
        out: dict[str, Versioned] = {}
        for model in self._call("GET", "/models"):
            if ":" not in model["name"]:
                fields = {k: v for k, v in model["spec"].items() if k != "name"}
                out[model["name"]] = (spec_from_fields(model["name"], fields), None)
        for name in templates:
            try:
                answer = self.client.get(f"/models/{name}/spec")
            except httpx.HTTPError as exc:
                raise StreamlearnError(f"no node answers at {self.base}: {exc}") from None
            if answer.status_code == 200:
                out[name] = version_from_fields(name, answer.json()["spec"])
        return out

    def versions(self) -> list[dict[str, Any]]:
        """Every deployed model's current version (``GET /models/{name}/spec``)."""
        names = [model["name"] for model in self._call("GET", "/models")]
        return [self._call("GET", f"/models/{name}/spec") for name in names]

    def deploy(self, versioned: Versioned) -> dict[str, Any]:
        spec, template = versioned
        fields = spec.model_dump(mode="json", exclude={"name"})
        body = {**template.as_dict(), **fields} if template else fields
        answer: dict[str, Any] = self._call("PUT", f"/models/{spec.name}", json=body)
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
