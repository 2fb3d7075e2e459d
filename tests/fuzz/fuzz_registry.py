"""Fuzz the model registry's inputs with atheris: a spec sent to ``PUT /models/{name}`` and a
record read from the ``models`` topic.

:func:`spec_from_fields` must return a :class:`ModelSpec` or raise :class:`InvalidSpec`
naming a field; :meth:`ModelRecord.decode` must return a record or raise :class:`SpecError`;
any other exception is a crash. Names are drawn from text (``:``, ``/``, spaces, lone
surrogates, 65 characters and more); specs are JSON documents, or tables whose keys are the
spec's fields or not, whose values are hostile (wrong types, huge and non-finite numbers,
nesting) and whose pipelines come from the River grammar of ``fuzz_pipeline.py``; records
are text, or real records with a field broken.

Longer runs find what ``fuzz_pipeline.py`` warns of: a River constructor given a huge size
(``sketch.Set(3e305)``, found at about 10,000 runs with ``-seed=1``) loops past the
deadline. ``PUT /models/{name}`` builds a spec in a thread, with a deadline, so that such a
spec is refused (422) instead of holding the node's event loop.

Run it from the repository root; libFuzzer's flags pass through::

    .venv/bin/python tests/fuzz/fuzz_registry.py -runs=100000 -seed=1 -timeout=10
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import atheris
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script, from anywhere
from tests.fuzz.fuzz_pipeline import Grammar, river_classes

NAMES = ("m", "fraud:eu", "a b", "", "-x", "x" * 65, "é", "a/b", "..", "m\x00", "\ud800")
HOSTILE: tuple[Any, ...] = (
    None, True, 0, -1, 2**64, 1e308, float("inf"), float("nan"), "", "x" * 300, [], {}, [[[]]],
    {"a": {"b": {}}}, "binary", "regression", "ADWIN()", ["Accuracy"], ["MAE", "R2"],
    {"Accuracy": 0.5}, {"R2": float("nan")}, {"tree": "tree.HoeffdingTreeClassifier()"},
    {"grid": {"l2": [0.0, 1.0]}, "budget": 0}, {"x": ["PageHinkley()"]},
)  # fmt: skip


def make_target() -> Callable[[bytes], None]:
    """The function libFuzzer calls with each input, over the instrumented registry."""
    with atheris.instrument_imports(include=["streams"]):
        from river import base

        from streams.learning.catalog import Catalog, ModelRecord, spec_from_fields
        from streams.learning.errors import InvalidSpec, SpecError
        from streams.learning.pipeline import ESTIMATOR_PACKAGES
        from streams.learning.spec import ModelSpec

    grammar = Grammar(river_classes(ESTIMATOR_PACKAGES, base))
    fields = [*ModelSpec.model_fields, "colour", "__class__"]
    good = spec_from_fields(
        "m", {"task": "binary", "pipeline": "linear_model.LogisticRegression()"}
    )
    record = Catalog().propose(good, "who", "when")

    def table(fdp: Any) -> Any:
        if fdp.ConsumeIntInRange(0, 4) == 0:
            try:
                return orjson.loads(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200)))
            except orjson.JSONDecodeError:
                return None
        out: dict[str, Any] = {"task": fdp.PickValueInList(["binary", "multiclass", "regression"])}
        for _ in range(fdp.ConsumeIntInRange(0, 5)):
            key = fdp.PickValueInList(fields)
            if key in ("pipeline",) or fdp.ConsumeIntInRange(0, 5) == 0:
                out[key] = grammar.expression(fdp)
            else:
                out[key] = fdp.PickValueInList(list(HOSTILE))
        return out

    def target(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        name = fdp.PickValueInList(list(NAMES)) if fdp.ConsumeBool() else fdp.ConsumeUnicode(8)
        spec = table(fdp)
        try:
            try:
                spec_from_fields(name, spec)
            except InvalidSpec as exc:
                assert exc.field is None or isinstance(exc.field, str)
            raw = record.encode()
            if fdp.ConsumeBool():
                document = orjson.loads(raw)
                document[fdp.PickValueInList(list(document))] = fdp.PickValueInList(list(HOSTILE))
                raw = json.dumps(document).encode()  # 2**64, NaN: what orjson would refuse
            else:
                raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
            try:
                ModelRecord.decode(name, raw)
            except SpecError:
                pass
        except BaseException:
            sys.stderr.write(f"\nthe registry was given {name!r}, {str(spec)[:2000]}\n")
            raise

    return target


def main(argv: list[str]) -> None:
    atheris.Setup(argv, make_target())
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
