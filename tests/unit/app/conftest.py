"""A node's HTTP API over an unstarted node (no broker), as many as a test needs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_api
from streams.node import build_node
from streams.settings import Settings

MODELS = """
[models.clicks]
task = "binary"
pipeline = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
preprocess = "none"

[models.prices]
task = "regression"
pipeline = "linear_model.LinearRegression()"
"""

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    """Factory: ``await make_client(**settings)`` is an HTTP client of a fresh node holding
    every model (as if the group gave it every partition), with ``settings`` on top of the
    test defaults (``max_request_bytes=4096``)."""
    async with AsyncExitStack() as stack:

        async def make(**settings: Any) -> httpx.AsyncClient:
            models = tmp_path / "models.toml"
            models.write_text(MODELS)
            options = {"max_request_bytes": 4096, **settings}
            node = build_node(Settings(models=models, state_dir=tmp_path / "state", **options))
            node.lifecycle.live.update(node.registry.models)
            transport = httpx.ASGITransport(app=create_api(node))
            client = httpx.AsyncClient(transport=transport, base_url="http://node")
            return await stack.enter_async_context(client)

        yield make
