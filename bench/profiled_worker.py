"""A ``streamlearn worker`` under cProfile, for a window that ``bench/run.py`` opens and closes.

    python bench/profiled_worker.py STATS_FILE [worker options]

The worker is the production one (``streamlearn worker``), unchanged. The profiler starts on
SIGRTMIN and stops on SIGRTMIN+1, writing its statistics (``pstats``' marshal format) to
STATS_FILE, and the time the garbage collector took in the window to STATS_FILE.gc.json; the
worker then runs on until it is stopped as any other. The window leaves out imports,
start-up and shut-down, which are no per-event cost. Real-time signals, because the worker's
mode takes SIGUSR1 and SIGUSR2. cProfile sees the main thread only: the thread the event
loop, the agents, Kafka's clients and the HTTP server all run on.
"""

from __future__ import annotations

import cProfile
import gc
import os
import sys
import time
from pathlib import Path
from signal import SIGRTMIN, signal
from types import FrameType
from typing import Any

import orjson

from streams import cli

START = SIGRTMIN
STOP = SIGRTMIN + 1


class GcTimer:
    """Seconds the garbage collector ran, and collections per generation, while on.

    A collection runs inside whichever function allocated when it was due, so a profile
    counts its time there; this says how much of the profile that was.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)

    def stop(self) -> dict[str, Any]:
        gc.callbacks.remove(self._on_gc)
        return {"seconds": self.seconds, "collections": self.collections}


def main() -> int:
    stats_file = Path(sys.argv[1])
    profiler = cProfile.Profile()
    collector = GcTimer()

    def start(signum: int, frame: FrameType | None) -> None:
        collector.start()
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        Path(f"{stats_file}.gc.json").write_bytes(orjson.dumps(collector.stop()))
        # Written whole, then renamed: the reader never sees half a file.
        profiler.dump_stats(f"{stats_file}.part")
        os.replace(f"{stats_file}.part", stats_file)

    signal(START, start)
    signal(STOP, stop)
    return cli.main(["worker", *sys.argv[2:]])


if __name__ == "__main__":
    sys.exit(main())
