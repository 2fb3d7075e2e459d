"""No dependency of any route runs in FastAPI's thread pool."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.main import create_api
from streams.node import build_node
from streams.settings import Settings
from tests.unit.app.conftest import MODELS


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every route, those of included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _api_routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def _is_async(call: Any) -> bool:
    target = call if inspect.isfunction(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target)


def test_every_dependency_and_endpoint_runs_on_the_loop(tmp_path: Path) -> None:
    # A plain ``def`` one runs in a worker thread: the hop there and back waits for the GIL,
    # up to the switch interval (5 ms) while learning holds it on the worker's loop.
    models = tmp_path / "models.toml"
    models.write_text(MODELS)
    api = create_api(build_node(Settings(models=models, state_dir=tmp_path / "state")))
    routes = list(_api_routes(api.routes))
    assert any(r.path == "/models/{name}/predict" for r in routes)
    sync = [
        (route.path, getattr(call, "__name__", repr(call)))
        for route in routes
        for call in (route.endpoint, *_calls(route.dependant))
        if not _is_async(call)
    ]
    assert sync == []
