"""Fuzz the pipeline parser with atheris: any text in, a River object or a SpecError out.

:func:`parse_estimator` (and :func:`parse_drift_detector`, which resolves bare class names)
must build a River object or raise :class:`SpecError`; any other exception is a crash. A third
of the inputs are read as text (lone surrogates included), the rest as a recipe for River code:
real River classes called with literals (sizes past C's integers, infinities, containers,
nested calls), joined with ``|``, ``+`` and ``-``, with a stray piece of text spliced in.

Run it from the repository root; libFuzzer's flags pass through. Some River constructors
loop or allocate without bound on a large size, so give each input a deadline::

    .venv/bin/python tests/fuzz/fuzz_pipeline.py -runs=100000 -seed=1 -timeout=10

A crash prints the exception and the expression, and writes the input to ``crash-<sha1>``
(``-artifact_prefix`` chooses the folder); replay it with ``fuzz_pipeline.py crash-<sha1>``.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from typing import Any

import atheris

#: Literal spellings a River constructor rarely expects.
HOSTILE_LITERALS = (
    "...", "1j", "b'x'", "'\\ud800'", "1e999", "-1e999", "-0.0", "0x" + "f" * 4000, "9" * 5000,
    "2**63", "[]", "{}", "()", "{[1]}", "{[1]: 1}", "set()", "lambda: 1", "__import__('os')",
    "x", "a.b", "*[1]", "**{}", "(x := 1)",
)  # fmt: skip
#: Names that are not River classes, or are but must not be reachable.
NOT_RIVER = (
    "os.system", "eval", "__import__", "linear_model.__builtins__", "neural_net.MLPRegressor",
    "compose.Pipeline.__init__", "tree.splitter.Splitter", "river.linear_model.LinearRegression",
    "datasets.Phishing", "stats.Mean",
)  # fmt: skip
OPERATORS = (" | ", " + ", " - ", "|", " ")


class Grammar:
    """River code written from the fuzzer's bytes: ``package.Class(literal, name=call(...))``."""

    def __init__(self, classes: list[tuple[str, tuple[str, ...]]]) -> None:
        self.classes = classes

    def expression(self, fdp: Any) -> str:
        steps = [self.call(fdp, depth=2) for _ in range(fdp.ConsumeIntInRange(1, 4))]
        text = steps[0]
        for step in steps[1:]:
            text += fdp.PickValueInList(list(OPERATORS)) + step
        if fdp.ConsumeBool():  # a stray piece of text, anywhere
            at = fdp.ConsumeIntInRange(0, len(text))
            text = text[:at] + fdp.ConsumeUnicode(fdp.ConsumeIntInRange(1, 4)) + text[at:]
        return text

    def call(self, fdp: Any, depth: int) -> str:
        if fdp.ConsumeIntInRange(0, 15) == 0:
            name, params = fdp.PickValueInList(list(NOT_RIVER)), ()
        else:
            name, params = self.classes[fdp.ConsumeIntInRange(0, len(self.classes) - 1)]
        args = []
        for _ in range(fdp.ConsumeIntInRange(0, 3)):
            nested = depth > 0 and fdp.ConsumeIntInRange(0, 3) == 0
            value = self.call(fdp, depth - 1) if nested else self.literal(fdp, depth)
            if params and fdp.ConsumeBool():
                args.append(f"{params[fdp.ConsumeIntInRange(0, len(params) - 1)]}={value}")
            else:
                args.append(value)
        return f"{name}({', '.join(args)})"

    def literal(self, fdp: Any, depth: int) -> str:
        kind = fdp.ConsumeIntInRange(0, 8 if depth > 0 else 6)
        if kind == 0:
            return str(fdp.ConsumeIntInRange(-3, 20))
        if kind == 1:
            return str(fdp.ConsumeInt(9))  # up to 72 bits: past C's integers
        if kind == 2:
            return repr(fdp.ConsumeFloat())  # nan and inf read as names
        if kind == 3:
            return repr(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 6)))
        if kind == 4:
            return str(fdp.PickValueInList([None, True, False]))
        if kind in (5, 6):
            return str(fdp.PickValueInList(list(HOSTILE_LITERALS)))
        items = [self.literal(fdp, depth - 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
        if kind == 7:
            shape: str = fdp.PickValueInList(["[{}]", "({},)", "{{{}}}"])
            return shape.format(", ".join(items))
        pairs = zip(items, reversed(items), strict=True)
        return "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"


def river_classes(packages: frozenset[str], base: Any) -> list[tuple[str, tuple[str, ...]]]:
    """Every public River class of ``packages``, as ``package.Class``, with its parameters."""
    found = []
    for package in sorted(packages):
        try:
            module = importlib.import_module(f"river.{package}")
        except ImportError:  # a package this River version lacks: the parser must say so
            continue
        for name in sorted(dir(module)):
            obj = getattr(module, name)
            if name.startswith("_") or not (isinstance(obj, type) and issubclass(obj, base.Base)):
                continue
            try:
                params = tuple(inspect.signature(obj).parameters)
            except (TypeError, ValueError):
                params = ()
            found.append((f"{package}.{name}", params))
    return found


def make_target() -> Callable[[bytes], None]:
    """The function libFuzzer calls with each input, over an instrumented parser."""
    with atheris.instrument_imports(include=["streams"]):
        from river import base

        from streams.learning.drift import parse_drift_detector
        from streams.learning.errors import SpecError
        from streams.learning.pipeline import ESTIMATOR_PACKAGES, parse_estimator

    grammar = Grammar(river_classes(ESTIMATOR_PACKAGES, base))
    parsers: tuple[Callable[[str], Any], ...] = (parse_estimator, parse_drift_detector)

    def target(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        if fdp.ConsumeIntInRange(0, 2) == 0:
            expression = fdp.ConsumeUnicode(len(data))
        else:
            expression = grammar.expression(fdp)
        for parse in parsers:
            try:
                parse(expression)
            except SpecError:
                pass
            except BaseException:
                # atheris reports the traceback and the fuzzer's bytes, not the expression.
                sys.stderr.write(f"\n{parse.__name__} was given {expression[:2000]!r}\n")
                raise

    return target


def main(argv: list[str]) -> None:
    atheris.Setup(argv, make_target())
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
