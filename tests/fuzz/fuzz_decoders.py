"""Fuzz the ``events`` and ``labels`` decoders with atheris: any bytes in, an answer out.

:func:`decode_events` and :func:`decode_labels` must answer every message with a non-empty
list of decoded messages and :class:`InvalidEvent` errors; any exception is a crash. Half of
the inputs are used as they are (the bytes a producer could put on the topic), half are read
as a recipe for a message close to the wire contract, so the fuzzer reaches past the JSON
parser into the field checks without a seed corpus.

Run it from the repository root; libFuzzer's flags pass through::

    .venv/bin/python tests/fuzz/fuzz_decoders.py -runs=1000000 -seed=1

A crash prints the exception and writes the input to ``crash-<sha1>`` (``-artifact_prefix``
chooses the folder); replay it with ``fuzz_decoders.py crash-<sha1>``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import atheris

#: The limit the decoders are called with: larger than any input libFuzzer makes by default.
MAX_BYTES = 1 << 16
FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
FIELDS = ("event_id", "model", "features", "label", "ts")
#: Number spellings that Python's json never writes: orjson refuses some, reads others as float.
RAW_NUMBERS = ("1e400", "-1e400", "18446744073709551616", "-9223372036854775809", "-0", "1E-400")


def json_value(fdp: Any, depth: int = 0, *, scalar: bool = False) -> Any:
    """A JSON value of any kind (or a ``scalar``: null, bool, number or string), nested up to
    three levels; a lone surrogate in a string becomes a ``\\ud800`` escape, which orjson
    refuses."""
    kind = fdp.ConsumeIntInRange(0, 4 if scalar else 9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return fdp.ConsumeBool()
    if kind == 2:
        return fdp.ConsumeInt(9)  # up to 72 bits: past what orjson reads as an int
    if kind == 3:
        return fdp.ConsumeFloat()  # nan and the infinities too: json writes NaN, Infinity
    if kind == 4:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 140))
    if kind == 5:
        return timestamp(fdp)
    if kind == 6:
        return fdp.PickValueInList(list(RAW_NUMBERS))
    if kind == 7:
        return [json_value(fdp, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {
        fdp.ConsumeUnicode(4): json_value(fdp, depth + 1)
        for _ in range(fdp.ConsumeIntInRange(0, 3))
    }


def timestamp(fdp: Any) -> Any:
    """Epoch milliseconds or an ISO 8601 string, aware or naive, often on the first or the
    last day of datetime's range (where an offset can push the UTC form out of it)."""
    if fdp.ConsumeBool():
        return fdp.ConsumeInt(8)
    where = fdp.ConsumeIntInRange(0, 2)
    span = (LAST - FIRST) // timedelta(seconds=1)
    seconds = fdp.ConsumeIntInRange(0, 86_400)
    moment = FIRST + timedelta(
        seconds=seconds
        if where == 0
        else span - seconds
        if where == 1
        else fdp.ConsumeIntInRange(0, span)
    )
    if fdp.ConsumeBool():
        return moment.replace(tzinfo=None).isoformat()
    offset = timezone(timedelta(minutes=fdp.ConsumeIntInRange(-1439, 1439)))
    return moment.replace(tzinfo=offset).isoformat()


def near_valid(fdp: Any) -> bytes:
    """A message (or a batch of them) whose fields are each absent, any value, or (mostly)
    plausible, sometimes with an extra field."""
    messages = []
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        message: dict[str, Any] = {}
        for field in FIELDS:
            # Mostly plausible, so the later checks are reached; 0 (what an exhausted input
            # reads as) too.
            how = fdp.ConsumeIntInRange(0, 7)
            if how == 6:
                message[field] = json_value(fdp)
            elif how != 7:
                message[field] = plausible(field, fdp)
        if fdp.ConsumeIntInRange(0, 7) == 7:
            message[fdp.ConsumeUnicode(6)] = json_value(fdp)
        messages.append(message)
    document = messages if len(messages) > 1 or fdp.ConsumeBool() else messages[0]
    text = json.dumps(document)
    for token in RAW_NUMBERS:
        text = text.replace(json.dumps(token), token)
    return text.encode()


def plausible(field: str, fdp: Any) -> Any:
    """A value ``field`` could carry in a valid message (and a few it could not)."""
    if field in ("event_id", "model"):  # short, or at the 128-character limit
        length = fdp.PickValueInList([1, 3, 8, 0, 127, 128, 129])
        return fdp.ConsumeUnicodeNoSurrogates(length).ljust(length, "e")
    if field == "features":
        n_features = fdp.ConsumeIntInRange(0, 4)
        return {fdp.ConsumeUnicode(4): json_value(fdp, 3, scalar=True) for _ in range(n_features)}
    if field == "label":
        return fdp.PickValueInList([True, 1, 0.5, "yes", None])
    return timestamp(fdp)


def make_target() -> Callable[[bytes], None]:
    """The function libFuzzer calls with each input, over instrumented decoders."""
    with atheris.instrument_imports(include=["streams.learning"]):
        from streams.learning.errors import InvalidEvent
        from streams.learning.events import Event, Label, decode_events, decode_labels

    decoders: tuple[tuple[Callable[[bytes, int], list[Any]], type], ...] = (
        (decode_events, Event),
        (decode_labels, Label),
    )

    def target(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        raw = near_valid(fdp) if fdp.ConsumeBool() else fdp.ConsumeBytes(len(data))
        for decode, kind in decoders:
            try:
                answer = decode(raw, MAX_BYTES)
            except BaseException:
                # atheris reports the traceback and the fuzzer's bytes, not the message.
                sys.stderr.write(f"\n{decode.__name__} was given {raw!r}\n")
                raise
            if not isinstance(answer, list) or not answer:
                raise AssertionError(f"{decode.__name__}({raw!r}) answered {answer!r}")
            for item in answer:
                invalid = isinstance(item, InvalidEvent)
                if not (invalid or isinstance(item, kind)) or (invalid and not str(item)):
                    raise AssertionError(f"{decode.__name__}({raw!r}) answered {item!r}")

    return target


def main(argv: list[str]) -> None:
    atheris.Setup(argv, make_target())
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
