"""The learning core next to the raw River loop, in this process, for the default spec.

    .venv/bin/python bench/core_ratio.py            # linear and hoeffding, 3 rounds each
    .venv/bin/python bench/core_ratio.py --n 5000   # a shorter stream

Each round measures the raw loop and the core alternately on the same Agrawal events, so the
ratio holds even on a busy machine; the best round of each is printed.
"""

from __future__ import annotations

import argparse
import gc

from harness import event_messages, rows
from in_process import core_rate, default_spec, river_loop

PIPELINES = {
    "linear": "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
    "hoeffding": "tree.HoeffdingTreeClassifier()",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = rows(args.n)
    for name, pipeline in PIPELINES.items():
        spec = default_spec("m", pipeline)
        messages = event_messages("m", data, 500)
        raw, core = [], []
        for _ in range(args.rounds):
            gc.collect()
            raw.append(river_loop(spec, data))
            gc.collect()
            core.append(core_rate(spec, messages, len(data)))
        print(
            f"{name:10s} raw {max(raw):8,.0f}/s  core {max(core):8,.0f}/s"
            f"  core/raw {max(core) / max(raw):.2f}"
            f"  overhead {1e6 / max(core) - 1e6 / max(raw):.1f} us/event"
        )


if __name__ == "__main__":
    main()
