"""Log lines: one JSON object each in json mode, Faust's included, with the context known."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import pytest
from mode.utils.logging import setup_logging
from river import datasets

from streams.agents.publish import Publisher
from streams.learning.registry import Outcome
from streams.logs import JsonFormatter, configure_logging, worker_logging_config
from tests.unit.learning.test_containment import LINEAR, HalfwayFails, registry_for


def line(record: logging.LogRecord) -> dict[str, Any]:
    text = JsonFormatter().format(record)
    assert "\n" not in text
    document: dict[str, Any] = orjson.loads(text)
    return document


def make(msg: str, *args: object, **attributes: Any) -> logging.LogRecord:
    return logging.makeLogRecord({"name": "streams.x", "levelname": "INFO", "levelno": 20,
                                  "msg": msg, "args": args, **attributes})  # fmt: skip


class Captured(logging.Handler):
    """Keeps the records it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def captured() -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def global_logging() -> Iterator[None]:
    """Whatever a test does to the process's logging is undone after it."""
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    # Faust's set-up (mode's) sets the levels of library loggers (aiokafka's) too.
    levels = {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
              if isinstance(logger, logging.Logger)}  # fmt: skip
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            logger.setLevel(levels.get(name, logging.NOTSET))
    sys.excepthook = hook
    logging.captureWarnings(False)


def test_a_line_has_the_time_level_logger_and_message() -> None:
    document = line(make("learned %d events", 12, created=1_767_225_600.25))
    assert document == {"ts": "2026-01-01T00:00:00.250+00:00", "level": "INFO",
                        "logger": "streams.x", "message": "learned 12 events"}  # fmt: skip
    assert datetime.fromisoformat(document["ts"]).utcoffset() is not None


def test_context_fields_are_kept_and_others_left_out() -> None:
    document = line(make("x", model="clicks", event_id="e7", topic="t", partition=3, offset=9,
                         color_message="\x1b[32mx", audit={"who": {"client": "a"}}))  # fmt: skip
    assert {k: document[k] for k in ("model", "event_id", "topic", "partition", "offset")} == {
        "model": "clicks", "event_id": "e7", "topic": "t", "partition": 3, "offset": 9}  # fmt: skip
    assert document["audit"] == {"who": {"client": "a"}}
    assert "color_message" not in document


def test_an_exception_is_one_string_field_and_a_newline_stays_escaped() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = make("failed:\n%s", "two lines", exc_info=sys.exc_info())
    document = line(record)
    assert document["message"] == "failed:\ntwo lines"
    assert document["exception"].startswith("Traceback (most recent call last):")
    assert document["exception"].endswith("ValueError: bad\nthing")


def test_a_message_whose_arguments_do_not_fit_is_kept() -> None:
    assert line(make("%d events", "many"))["message"] == "%d events ('many',)"


def test_odd_context_values_still_make_json() -> None:
    document = line(make("x", model=object(), offset=2**70))
    assert document["offset"] == str(2**70) and document["model"].startswith("<object")


def test_text_mode_leaves_fausts_own_logging_alone() -> None:
    assert worker_logging_config("text", "info") is None


def test_fausts_worker_set_up_with_the_json_config_writes_json(
    global_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # What faust.Worker does when it starts (mode's Worker._setup_logging), with our config.
    setup_logging(loglevel="info", logging_config=worker_logging_config("json", "info"))
    logging.getLogger("faust.transport.consumer").info("[^--Consumer]: Starting...")
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/healthz", "1.1", 200)
    logging.getLogger("aiokafka").debug("not at info")
    lines = capsys.readouterr().err.splitlines()
    assert [orjson.loads(text)["logger"] for text in lines] == [
        "faust.transport.consumer", "uvicorn.access"]  # fmt: skip
    assert orjson.loads(lines[1])["message"] == '127.0.0.1:5 - "GET /healthz HTTP/1.1" 200'


def test_json_mode_logs_warnings_and_uncaught_errors_as_json(global_logging: None) -> None:
    configure_logging("json")
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    logging.getLogger("py.warnings").warning("a warning, as captureWarnings logs it")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        sys.excepthook(RuntimeError, exc, exc.__traceback__)
    warning, uncaught = (orjson.loads(text) for text in stream.getvalue().splitlines())
    assert warning["logger"] == "py.warnings"
    assert uncaught["level"] == "CRITICAL" and uncaught["message"] == (
        "stopped by an uncaught RuntimeError"
    )
    assert uncaught["exception"].endswith("RuntimeError: boom")


def test_a_model_error_line_names_the_model_and_the_event(captured: Captured) -> None:
    registry = registry_for(task="binary", pipeline=LINEAR, preprocess="none")
    model = registry.get("m")
    model.estimator = HalfwayFails() | model.estimator
    x, y = next(iter(datasets.Phishing()))
    raw = orjson.dumps({"event_id": "bomb", "model": "m", "features": {**x, "bomb": 1.0},
                        "label": y})  # fmt: skip
    registry.handle_events(raw, topic="events", partition=0, offset=41, now=0.0)
    (record,) = [r for r in captured.records if r.name == "streams.learning.registry"]
    document = line(record)
    assert document["level"] == "WARNING"
    context = {k: document[k] for k in ("model", "event_id", "topic", "partition", "offset")}
    assert context == {"model": "m", "event_id": "bomb", "topic": "events", "partition": 0,
                       "offset": 41}  # fmt: skip


class RecordingTopics:
    def __init__(self) -> None:
        self.dead_letters_topic = self

    def send_soon(self, **_: Any) -> None:
        pass


def test_a_dead_letter_line_names_its_model_and_offset(captured: Captured) -> None:
    registry = registry_for(task="binary", pipeline=LINEAR, preprocess="none")
    raw = b'{"event_id": "e1", "model": "m", "features": {"x": null}, "label": true}'
    outcome: Outcome = registry.handle_events(raw, topic="events", partition=0, offset=7, now=0.0)
    unknown = registry.handle_events(b'{"event_id": "e2", "model": "nobody", "features": {}}',
                                     topic="events", partition=0, offset=8, now=0.0)  # fmt: skip
    publisher = Publisher(RecordingTopics())  # type: ignore[arg-type]
    publisher.add(outcome, b"m")
    publisher.add(unknown, b"nobody")
    known, other = (line(r) for r in captured.records if r.name == "streams.agents.publish")
    assert (known["model"], known["topic"], known["partition"], known["offset"]) == (
        "m", "events", 0, 7)  # fmt: skip
    assert "features.x is null" in known["message"]
    assert "model" not in other and other["offset"] == 8  # not a declared model: not named
