"""How the errors of :mod:`streams.learning.errors` are answered over HTTP: one table, one
handler."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from streams.learning.errors import (
    InvalidEvent,
    JobConflict,
    ModelUnavailable,
    NodeBusy,
    SnapshotNotFound,
    SnapshotRefused,
    SpecError,
    StreamlearnError,
    UnknownCandidate,
    UnknownJob,
    UnknownModel,
)

#: The status of each category; a subclass answers as its nearest listed ancestor.
STATUS: dict[type[StreamlearnError], int] = {
    SpecError: 422,
    InvalidEvent: 422,
    SnapshotRefused: 422,
    UnknownModel: 404,
    UnknownCandidate: 404,
    SnapshotNotFound: 404,
    UnknownJob: 404,
    JobConflict: 409,
    NodeBusy: 409,
    ModelUnavailable: 503,
}


def status_of(error: BaseException) -> int:
    """The HTTP status ``error`` is answered with (500 for anything not listed)."""
    for cls in type(error).__mro__:
        status = STATUS.get(cls)
        if status is not None:
            return status
    return 500


async def handle_streamlearn_error(request: Request, exc: Exception) -> JSONResponse:
    """``{"detail": sentence}`` with the category's status; 503s say when to retry."""
    status = status_of(exc)
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def invalid(loc: list[str | int], msg: str) -> RequestValidationError:
    """A 422 naming one field (``loc``, as FastAPI's own), for checks beyond the schema."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg, "input": None}])
