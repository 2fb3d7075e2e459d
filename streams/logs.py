"""How a process writes its log: text for a person at a terminal, or one JSON object a line.

``STREAMLEARN_LOG_FORMAT=json`` makes every line a JSON object with ``ts`` (RFC 3339, UTC, to
the millisecond), ``level``, ``logger`` and ``message``; the context a log call passes as
``extra`` (:data:`CONTEXT_FIELDS`: ``model``, ``event_id``, ``topic``, ``partition``,
``offset``, and ``audit`` for an admin call) where it is known; and ``exception``, the
traceback as one string, never as lines of its own.

Faust's worker configures logging itself when it starts (mode's ``setup_logging`` clears the
root logger's handlers, then applies a ``dictConfig``): :func:`worker_logging_config` is the
configuration it is handed, so that Faust's, aiokafka's and uvicorn's lines (uvicorn logs
through the root logger under Faust) come out in the same shape as ours.

Examples
--------
>>> record = logging.makeLogRecord({"name": "streams.agents.publish", "levelname": "WARNING",
...     "msg": "dead letter from %s[%d]@%d", "args": ("events", 0, 7), "created": 0.0,
...     "model": "clicks", "offset": 7})
>>> JsonFormatter().format(record)
'{"ts":"1970-01-01T00:00:00.000+00:00","level":"WARNING","logger":"streams.agents.publish",\
"message":"dead letter from events[0]@7","model":"clicks","offset":7}'
"""

from __future__ import annotations

import logging
import logging.config
import sys
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from streams.settings import LogFormat

#: The ``extra`` fields a JSON line carries when a log call gives them.
CONTEXT_FIELDS = ("model", "event_id", "topic", "partition", "offset", "audit")
#: The text format of the lines written before Faust's worker configures its own.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a newline in a message is escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            text = orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # an integer past 64 bits, say, in a context field
            text = orjson.dumps({k: v if isinstance(v, str) else str(v) for k, v in line.items()})
        return text.decode()


def _message(record: logging.LogRecord) -> str:
    """The record's message; one whose arguments do not fit its format is kept, not lost to
    logging's multi-line "--- Logging error ---" report."""
    try:
        return record.getMessage()
    except (TypeError, ValueError):
        return f"{record.msg!s} {record.args!r}"


def _level(level: int | str) -> int | str:
    """``dictConfig`` takes level names in capitals only (``--loglevel info``)."""
    return level.upper() if isinstance(level, str) else level


def worker_logging_config(log_format: LogFormat, level: int | str) -> dict[str, Any] | None:
    """The ``logging_config`` for Faust's worker: ``None`` (Faust's own format, as ever) for
    ``text``; for ``json``, one handler on stderr with :class:`JsonFormatter`."""
    if log_format == "text":
        return None
    return {
        "version": 1,
        # The loggers modules created at import (ours, Faust's) must keep logging.
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": _level(level), "handlers": ["default"]},
    }


def configure_logging(log_format: LogFormat, level: int | str = logging.INFO) -> None:
    """Configure this process's logging for ``log_format``. In ``json`` mode warnings and an
    uncaught exception are logged too (as JSON), instead of written to stderr as text."""
    config = worker_logging_config(log_format, level)
    # httpx logs every request at INFO: a line per poll of `streamlearn tune`, per request a
    # node relays. Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if config is None:
        logging.basicConfig(level=_level(level), format=TEXT_FORMAT)
        return
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, traceback)
        return
    logging.getLogger("streamlearn").critical(
        "stopped by an uncaught %s", kind.__name__, exc_info=(kind, value, traceback)
    )
