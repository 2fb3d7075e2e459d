"""Replay a dataset into the events topic: River's bundled datasets, synthetic streams, files.

Sources
-------
- ``river:Phishing`` (any dataset River ships without downloading),
- ``river:synth.Agrawal(seed=42)`` (a synthetic stream, literal keyword arguments only),
- ``path/to/file.csv`` or ``.jsonl`` (the label in column ``label``, or ``--label-column``).

A source can be replayed several times over (``passes``, ``None`` for ever): each pass after
the first puts its number in the event id prefix, so a model learns it again instead of
dropping it as duplicates.

Examples
--------
>>> rows = iter_source("river:synth.Agrawal(seed=1)", limit=2)
>>> [sorted(x)[:2] for x, y in rows]
[['age', 'car'], ['age', 'car']]
>>> [event_id for event_id, x, y in numbered_rows("river:TrumpApproval", "p", limit=2, passes=2)]
['p-0', 'p-1', 'p.1-0', 'p.1-1']
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

from streams.acls import Operation, require_topics
from streams.credentials import client_options
from streams.learning.errors import SourceError
from streams.settings import Settings


def iter_source(
    source: str, *, limit: int | None = None, label_column: str = "label"
) -> Iterator[tuple[dict[str, Any], Any]]:
    """``(x, y)`` pairs from a source, at most ``limit`` of them."""
    if source.startswith("river:"):
        rows = _river_dataset(source.removeprefix("river:"))
    else:
        rows = _file_rows(Path(source), label_column)
    return itertools.islice(rows, limit)


def numbered_rows(
    source: str,
    prefix: str,
    *,
    limit: int | None = None,
    passes: int | None = 1,
    label_column: str = "label",
) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(event_id, x, y)`` over ``passes`` passes of a source (``None``: until the caller
    stops), ``limit`` rows each.

    Ids are ``<prefix>-<row>`` in the first pass and ``<prefix>.<k>-<row>`` in pass ``k``
    (from 1). A pass that yields nothing ends the replay, so an empty source never spins.
    """
    # The first pass is opened here, so that a source River does not have fails at once.
    first = iter_source(source, limit=limit, label_column=label_column)

    def rows() -> Iterator[tuple[str, dict[str, Any], Any]]:
        pass_rows = first
        for k in itertools.count() if passes is None else range(passes):
            if k > 0:
                pass_rows = iter_source(source, limit=limit, label_column=label_column)
            pass_prefix = prefix if k == 0 else f"{prefix}.{k}"
            n_rows = 0
            for n_rows, (x, y) in enumerate(pass_rows, start=1):
                yield f"{pass_prefix}-{n_rows - 1}", x, y
            if n_rows == 0:
                return

    return rows()


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
    batch: int = 1,
    passes: int | None = 1,
    progress: bool = True,
) -> int:
    """Send each row as an event keyed by ``model``; returns how many were sent.

    ``batch`` events go in one message (a JSON array; 1 sends single objects). With
    ``label_delay = k > 0`` events go out without their label, and each label follows on the
    labels topic once ``k`` more events have been sent (as River's ``delay=k``). ``passes``
    replays the source that many times (``None``: until cancelled) at one steady ``rate``,
    ``limit`` rows per pass, with new event ids in each pass (see :func:`numbered_rows`).

    Raises
    ------
    TopicAccessDenied
        The broker's ACLs do not let this Kafka user write the topics.
    """
    prefix = id_prefix if id_prefix is not None else uuid.uuid4().hex[:8]
    rows = numbered_rows(source, prefix, limit=limit, passes=passes, label_column=label_column)
    writes = ["events", "labels"] if label_delay > 0 else ["events"]
    await require_topics(settings, {settings.topic_name(n): {Operation.WRITE} for n in writes})
    total = None if limit is None or passes is None else limit * passes
    held: deque[dict[str, Any]] = deque()
    async with _Sender(settings, model, batch) as sender:
        with tqdm(total=total, unit="ev", disable=not progress, desc=f"replay {source}") as bar:
            for event_id, x, y in rows:
                if len(held) >= label_delay > 0:
                    await sender.add("labels", held.popleft())
                event: dict[str, Any] = {"event_id": event_id, "model": model, "features": x}
                if y is not None and label_delay > 0:
                    held.append({"event_id": event_id, "model": model, "label": y})
                elif y is not None:
                    event["label"] = y
                await sender.add("events", event)
                bar.update(1)
                if rate:
                    await sender.pace(rate)
            while held:
                await sender.add("labels", held.popleft())
    return sender.n_events


class _Sender:
    """Batches values per topic into messages and keeps the produce futures in check."""

    def __init__(self, settings: Settings, model: str, batch: int) -> None:
        self.settings = settings
        self.key = model.encode()
        self.batch = max(1, batch)
        self.buffers: dict[str, list[dict[str, Any]]] = {"events": [], "labels": []}
        self.inflight: list[Any] = []
        self.n_events = 0
        self.started = time.monotonic()
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            **client_options(settings),
        )

    async def __aenter__(self) -> _Sender:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                for name in self.buffers:
                    await self._flush(name)
                await asyncio.gather(*self.inflight)
        finally:
            await self.producer.stop()

    async def add(self, name: str, value: dict[str, Any]) -> None:
        buffer = self.buffers[name]
        buffer.append(value)
        self.n_events += name == "events"
        if len(buffer) >= self.batch:
            await self._flush(name)

    async def pace(self, rate: float) -> None:
        """Sleep so that events go out at ``rate`` per second."""
        ahead = self.n_events / rate - (time.monotonic() - self.started)
        if ahead > 0:
            for name in self.buffers:
                await self._flush(name)
            await asyncio.sleep(ahead)

    async def _flush(self, name: str) -> None:
        buffer = self.buffers[name]
        if not buffer:
            return
        value = orjson.dumps(buffer[0] if self.batch == 1 else buffer)
        topic = self.settings.topic_name(name)
        self.inflight.append(await self.producer.send(topic, value, key=self.key))
        buffer.clear()
        if len(self.inflight) >= 500:
            await asyncio.gather(*self.inflight)
            self.inflight.clear()
