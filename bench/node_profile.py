"""Where a node's time goes, per event: a cProfile of the running node next to one of the
learning core alone, each function's self time (tottime) summed by the category of the file
it is written in.

Built-in functions (C code, no file) count for the category of the functions that called
them, in the share each caller had; a few have a category of their own (``orjson.loads`` is
decoding, ``orjson.dumps`` publishing, ``_pickle`` and ``_hashlib`` snapshots, and the event
loop's ``epoll.poll`` is idle time, reported apart from the busy time). cProfile's overhead is
per call, so it inflates every figure, small functions most: read the shares, and the
µs per event only next to each other.
"""

from __future__ import annotations

import asyncio
import cProfile
import marshal
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from harness import ROOT, Node, event_messages, models_toml, produce
from in_process import Data, core_registry, feed_core
from profiled_worker import START, STOP, GcTimer

from streams.learning.spec import ModelSpec
from streams.topics import create_topics

#: ``(file, line, function)``, as cProfile names a function.
Key = tuple[str, int, str]
#: cProfile's statistics: per function, ``(calls, primitive calls, tottime, cumtime, callers)``.
Stats = dict[Key, Any]

_LEARNING = f"{ROOT}/streams/learning/"
_STREAMS = f"{ROOT}/streams/"
_SITE = "site-packages/"
IDLE = "idle (waiting in epoll)"
OTHER = "other"

#: Categories by source file; the first that matches wins.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("metrics", (f"{_SITE}river/metrics/", f"{_SITE}river/utils/rolling.py",
                 f"{_LEARNING}metrics.py")),
    ("River (the pipeline)", (f"{_SITE}river/", f"{_LEARNING}preprocessing.py")),
    ("validation, decoding", (f"{_LEARNING}events.py", f"{_LEARNING}guard.py")),
    ("dedupe, pending, labels", tuple(
        f"{_LEARNING}{module}.py" for module in ("dedupe", "ttl", "labels", "pending")
    )),
    ("journal", (f"{_LEARNING}journal.py", "/copy.py")),
    ("snapshots", (f"{_LEARNING}snapshots.py", f"{_LEARNING}state.py",
                   f"{_STREAMS}snapshot_topic.py", f"{_STREAMS}rebalance.py", "/pickle.py",
                   "/hmac.py", "/copyreg.py")),
    ("records, publishing", (f"{_LEARNING}records.py", f"{_STREAMS}agents/publish.py",
                             f"{_STREAMS}agents/move.py")),
    ("learning core: registry, model, race", (_LEARNING,)),
    ("node: agents, gate", (_STREAMS,)),
    ("Faust, mode, aiokafka, asyncio", (f"{_SITE}faust/", f"{_SITE}mode/", f"{_SITE}aiokafka/",
                                        f"{_SITE}kafka/", "/asyncio/", "/selectors.py",
                                        "/socket.py")),
    ("HTTP (the bench polling the node)", (f"{ROOT}/app/", f"{_SITE}uvicorn/",
                                           f"{_SITE}starlette/", f"{_SITE}fastapi/",
                                           f"{_SITE}h11/", f"{_SITE}httptools/",
                                           f"{_SITE}anyio/", f"{_SITE}pydantic")),
)  # fmt: skip
NAMES = (*(name for name, _ in CATEGORIES), OTHER)

#: Built-in functions with a category of their own, by a part of their name.
BUILTINS = (
    ("'poll' of 'select.epoll'", IDLE),
    ("orjson.loads", "validation, decoding"),
    ("orjson.dumps", "records, publishing"),
    ("_pickle", "snapshots"),
    ("_hashlib", "snapshots"),
)


def profile_node(
    bootstrap: str, spec: ModelSpec, data: Data, batch: int, tmp: Path
) -> dict[str, Any]:
    """The breakdown of a node (``bench/profiled_worker.py``) learning ``data`` in
    ``batch``-event messages: the window opens once the node is ready, before the backlog is
    written, and closes once every event is learned (the bench asks every 0.2 s)."""
    stats_file = tmp / "node.prof"
    worker = str(ROOT / "bench" / "profiled_worker.py")
    command = (worker, str(stats_file), "--loglevel", "warning")
    node = Node(bootstrap, models_toml(spec), tmp / "profile", command=command)
    asyncio.run(create_topics(node.settings))
    messages = event_messages(spec.name, data, batch)
    node.start()
    try:
        node.signal(START)
        started = time.perf_counter()
        topic = node.settings.topic_name("events")
        asyncio.run(produce(bootstrap, topic, messages, spec.name.encode()))
        node.wait_learned(spec.name, len(data), poll=0.2)
        seconds = time.perf_counter() - started
        node.signal(STOP)
        stats = _read_stats(stats_file)
        collected = orjson.loads(Path(f"{stats_file}.gc.json").read_bytes())
    finally:
        node.stop()
    return {"window_seconds": seconds, **breakdown(stats, len(data), collected)}


def profile_core(spec: ModelSpec, messages: list[bytes], n: int) -> dict[str, Any]:
    """The breakdown of the learning core alone (``ModelRegistry.handle_events``) on
    ``messages`` of ``n`` events, in this process."""
    registry = core_registry(spec)
    profiler, collector = cProfile.Profile(), GcTimer()
    collector.start()
    profiler.enable()
    feed_core(registry, spec.name, messages)
    profiler.disable()
    collected = collector.stop()
    profiler.create_stats()
    return breakdown(dict(profiler.stats), n, collected)


def _read_stats(path: Path, timeout: float = 60.0) -> Stats:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the profiled worker wrote no {path}")
        time.sleep(0.1)
    stats: Stats = marshal.loads(path.read_bytes())  # noqa: S302 (written by our own worker)
    return stats


def breakdown(stats: Stats, events: int, collected: dict[str, Any]) -> dict[str, Any]:
    """µs per event and share of the busy time, per category and for the top 15 functions;
    idle time apart; the garbage collector's time (inside the categories) on its own."""
    totals = self_time(stats)
    idle = totals.pop(IDLE, 0.0)
    busy = sum(totals.values())
    return {
        "events": events,
        "busy_seconds": busy,
        "idle_seconds": idle,
        "busy_us_per_event": 1e6 * busy / events,
        "categories": {
            name: {"us_per_event": 1e6 * totals[name] / events, "share": totals[name] / busy}
            for name in NAMES
        },
        "top": top_functions(stats, events, busy),
        "gc": {
            **collected,
            "us_per_event": 1e6 * collected["seconds"] / events,
            "share": collected["seconds"] / busy,
        },
    }


def self_time(stats: Stats) -> defaultdict[str, float]:
    """Seconds of self time per category."""
    totals: defaultdict[str, float] = defaultdict(float)
    for key, (_, _, tottime, _, callers) in stats.items():
        named = category(key)
        if named is not None:
            totals[named] += tottime
            continue
        left = tottime  # a built-in: its time counts for its callers
        for caller, (_, _, caller_tottime, _) in callers.items():
            totals[category(caller) or OTHER] += caller_tottime
            left -= caller_tottime
        totals[OTHER] += max(left, 0.0)
    return totals


def category(key: Key) -> str | None:
    """The category of a function; ``None`` for a built-in that counts for its callers."""
    filename, _, function = key
    if filename == "~":
        return next((name for part, name in BUILTINS if part in function), None)
    for name, parts in CATEGORIES:
        if any(part in filename for part in parts):
            return name
    return OTHER


def top_functions(stats: Stats, events: int, busy: float, n: int = 15) -> list[dict[str, Any]]:
    """The ``n`` functions with the most self time, the event loop's idle wait left out."""
    ranked = sorted(
        (item for item in stats.items() if category(item[0]) != IDLE),
        key=lambda item: item[1][2],
        reverse=True,
    )
    return [
        {
            "function": label(key),
            "category": category(key) or "(its callers')",
            "us_per_event": 1e6 * tottime / events,
            "share": tottime / busy,
            "calls_per_event": calls / events,
        }
        for key, (calls, _, tottime, _, _) in ranked[:n]
    ]


def label(key: Key) -> str:
    """``file:line(function)``, the file relative to the project, site-packages or the
    standard library."""
    filename, line, function = key
    if filename == "~":
        return function
    for marker in (_SITE, f"{ROOT}/", "/lib/python3.11/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({function})"
