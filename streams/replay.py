"""Replay a dataset into the events topic: River's bundled datasets, synthetic streams, files.

Sources
-------
- ``river:Phishing`` (any dataset River ships without downloading),
- ``river:synth.Agrawal(seed=42)`` (a synthetic stream, literal keyword arguments only),
- ``path/to/file.csv`` or ``.jsonl`` (the label in column ``label``, or ``--label-column``).

Examples
--------
>>> rows = iter_source("river:synth.Agrawal(seed=1)", limit=2)
>>> [sorted(x)[:2] for x, y in rows]
[['age', 'car'], ['age', 'car']]
"""

from __future__ import annotations

import ast
import asyncio
import csv
import itertools
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from river import datasets
from tqdm import tqdm

from streams.learning.errors import StreamlearnError
from streams.settings import Settings


class SourceError(StreamlearnError, ValueError):
    """The replay source cannot be read."""


def iter_source(
    source: str, *, limit: int | None = None, label_column: str = "label"
) -> Iterator[tuple[dict[str, Any], Any]]:
    """``(x, y)`` pairs from a source, at most ``limit`` of them."""
    if source.startswith("river:"):
        rows = _river_dataset(source.removeprefix("river:"))
    else:
        rows = _file_rows(Path(source), label_column)
    return itertools.islice(rows, limit)


def _river_dataset(spec: str) -> Iterator[tuple[dict[str, Any], Any]]:
    try:
        node = ast.parse(spec, mode="eval").body
    except SyntaxError:
        raise SourceError(f"cannot read the River dataset {spec!r}") from None
    kwargs: dict[str, Any] = {}
    if isinstance(node, ast.Call):
        if node.args:
            raise SourceError("dataset arguments must be given by keyword, e.g. seed=42")
        try:
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
        except ValueError:
            raise SourceError("dataset arguments must be literals") from None
        node = node.func
    path = ast.unparse(node)
    holder: Any = datasets
    for part in path.split("."):
        if part.startswith("_") or not hasattr(holder, part):
            raise SourceError(f"River has no dataset {path!r}")
        holder = getattr(holder, part)
    if not isinstance(holder, type):
        raise SourceError(f"{path!r} is not a River dataset class")
    try:
        dataset = holder(**kwargs)
    except TypeError as exc:
        raise SourceError(f"{path}: {exc}") from None
    return iter(dataset)


def _file_rows(path: Path, label_column: str) -> Iterator[tuple[dict[str, Any], Any]]:
    if not path.exists():
        raise SourceError(f"{path} does not exist; use river:NAME or a .csv/.jsonl file")
    if path.suffix == ".jsonl":
        with path.open("rb") as lines:
            for line in lines:
                if line.strip():
                    row = orjson.loads(line)
                    label = row.pop(label_column, None)
                    yield row, label
    elif path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                label = row.pop(label_column, None)
                yield {k: _number_or_text(v) for k, v in row.items()}, _number_or_text(label)
    else:
        raise SourceError(f"{path}: only .csv and .jsonl files can be replayed")


def _number_or_text(value: str | None) -> Any:
    if value is None or value == "":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


async def replay(
    settings: Settings,
    source: str,
    model: str,
    *,
    limit: int | None = None,
    rate: float | None = None,
    id_prefix: str | None = None,
    label_column: str = "label",
    label_delay: int = 0,
    progress: bool = True,
) -> int:
    """Send each row as an event keyed by ``model``; returns how many were sent.

    With ``label_delay = k > 0`` events go out without their label, and each label follows on
    the labels topic once ``k`` more events have been sent (as River's ``delay=k``).
    """
    rows = iter_source(source, limit=limit, label_column=label_column)
    prefix = id_prefix if id_prefix is not None else uuid.uuid4().hex[:8]
    topic = settings.topic_name("events")
    labels_topic = settings.topic_name("labels")
    held: deque[tuple[str, Any]] = deque()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", enable_idempotence=True
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        with tqdm(total=limit, unit="ev", disable=not progress, desc=f"replay {source}") as bar:
            pending = []
            for i, (x, y) in enumerate(rows):
                event_id = f"{prefix}-{i}"
                if len(held) >= label_delay > 0:
                    pending.append(
                        await _send_label(producer, labels_topic, model, *held.popleft())
                    )
                event: dict[str, Any] = {"event_id": event_id, "model": model, "features": x}
                if y is not None and label_delay > 0:
                    held.append((event_id, y))
                elif y is not None:
                    event["label"] = y
                pending.append(await producer.send(topic, orjson.dumps(event), key=model.encode()))
                sent += 1
                if len(pending) >= 500:
                    await asyncio.gather(*pending)
                    bar.update(len(pending))
                    pending.clear()
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.gather(*pending)
                        bar.update(len(pending))
                        pending.clear()
                        await asyncio.sleep(ahead)
            while held:
                pending.append(await _send_label(producer, labels_topic, model, *held.popleft()))
            await asyncio.gather(*pending)
            bar.update(len(pending))
    finally:
        await producer.stop()
    return sent


async def _send_label(
    producer: AIOKafkaProducer, topic: str, model: str, event_id: str, label: Any
) -> Any:
    value = orjson.dumps({"event_id": event_id, "model": model, "label": label})
    return await producer.send(topic, value, key=model.encode())
