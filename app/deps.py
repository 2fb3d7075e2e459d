"""Dependencies injected into route handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from streams.learning.model import OnlineModel
from streams.node import Node


def get_node(request: Request) -> Node:
    """The node this API is served by (set by :func:`app.main.create_api`)."""
    node: Node = request.app.state.node
    return node


NodeDep = Annotated[Node, Depends(get_node)]


def get_model(name: str, node: NodeDep) -> OnlineModel:
    """The model named in the path; :class:`UnknownModel` (404) otherwise."""
    return node.registry.get(name)


ModelDep = Annotated[OnlineModel, Depends(get_model)]
