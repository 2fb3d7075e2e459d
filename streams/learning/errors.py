"""The error tree of the learning core.

Each class names a failure category, mixes in the nearest builtin, and carries the HTTP
status an adapter should answer with (``status_code``), so the mapping lives in one handler.
"""

from __future__ import annotations


class StreamlearnError(Exception):
    """Base class of every error streamlearn raises on purpose."""

    status_code: int = 500


class SpecError(StreamlearnError, ValueError):
    """A model spec (TOML table or pipeline expression) is invalid."""

    status_code = 422


class InvalidEvent(StreamlearnError, ValueError):
    """An event or label message breaks the wire contract.

    ``field`` names the offending field (``event_id``, ``features.age``, ...) or ``None``
    when the message as a whole is unreadable.
    """

    status_code = 422

    def __init__(self, message: str, field: str | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        #: The model the event names, when it got far enough to name one.
        self.model = model


class UnknownModel(StreamlearnError, LookupError):
    """No model of that name is declared."""

    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model {name!r}")
        self.name = name


class UnknownCandidate(StreamlearnError, LookupError):
    """The model has no challenger of that name."""

    status_code = 404

    def __init__(self, model: str, name: str) -> None:
        super().__init__(f"model {model!r} has no challenger {name!r}")


class ModelNotHere(StreamlearnError, LookupError):
    """The model exists but is not live on this node, and no other node can answer for it
    right now (its partition is moving between nodes)."""

    status_code = 503

    def __init__(self, name: str) -> None:
        super().__init__(
            f"model {name!r} is not live on this node and no other node holds it right now:"
            " its partition is moving between nodes (a rebalance); retry in a moment"
        )
        self.name = name
