"""Property tests: a pipeline expression or a models file is built, or refused with SpecError.

:func:`parse_estimator` turns River code into River objects without evaluating it, and
:func:`load_specs` reads the models file a node starts from. Whatever text they are given
(arbitrary strings, River calls with hostile literals, mutated expressions, hostile pieces such
as ``__import__``, lambdas, ``**kwargs``, huge numbers and deep nesting, TOML tables of any
shape), the only exception they may raise is :class:`SpecError`, which the node reports as
"this spec is wrong"; anything else (a ``TypeError`` from a River constructor, a
``RecursionError``) reads as a crash of streamlearn itself.

Each call runs in a forked child (see :func:`isolated`): some River constructors, given a large
enough size, allocate without bound or abort the process from Rust, and the test must report
such an input as a failure rather than take the test session down with it.

The examples are derandomized, so CI runs the same ones every time.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import os
import resource
import select
import signal
import tempfile
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river import base

from streams.learning.drift import parse_drift_detector
from streams.learning.errors import SpecError
from streams.learning.metrics import ALLOWED
from streams.learning.pipeline import ESTIMATOR_PACKAGES, parse_estimator
from streams.learning.spec import load_specs

#: How long one call may take, and how much memory it may add, before it counts as a hang.
TIMEOUT_SECONDS = 5.0
MEMORY_HEADROOM = 1 << 30

# Running a call in a child process ------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How a call ended: ``ok``, ``SpecError``, the name of any other exception, ``timeout``
    or ``signal SIGABRT`` (and the like); ``detail`` holds the message or the traceback."""

    ending: str
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.ending in ("ok", "SpecError")


def isolated(call: Callable[[], object], timeout: float = TIMEOUT_SECONDS) -> Outcome:
    """Run ``call`` in a forked child, and say how it ended.

    The child reports over a pipe and leaves with ``os._exit``, so none of the parent's
    cleanup (pytest's, Hypothesis's) runs twice; a child that runs past ``timeout`` is killed.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(_run(call)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        ready, _, _ = select.select([pipe], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return Outcome("timeout", f"still running after {timeout} s")
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Outcome(f"signal {signal.Signals(os.WTERMSIG(status)).name}")
    if not report:
        return Outcome("no report", f"the child exited with status {status}")
    ending, detail = json.loads(report)
    return Outcome(ending, detail)


def _run(call: Callable[[], object]) -> list[str]:
    """``call``'s ending, in the child. Warnings are ignored here: a River constructor's
    warning is not an exception the node would see."""
    try:
        _cap_memory(MEMORY_HEADROOM)
        warnings.simplefilter("ignore")
        call()
    except SpecError as exc:
        return ["SpecError", str(exc)[:500]]
    except BaseException as exc:  # a PyO3 PanicException is not an Exception
        return [type(exc).__name__, "".join(traceback.format_exception(exc))[-3000:]]
    return ["ok", ""]


def _cap_memory(headroom: int) -> None:
    """Let this process grow by ``headroom`` bytes of address space at most, so a runaway
    allocation ends in a MemoryError (or a Rust abort) instead of the machine's OOM killer."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    vm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmSize"))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm_kb * 1024 + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def assert_built_or_spec_error(outcome: Outcome, what: str) -> None:
    assert outcome.allowed, f"{what}\nended with {outcome.ending}:\n{outcome.detail}"


# Pipeline expressions ---------------------------------------------------------------------------


@functools.cache
def river_classes() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every public River class an expression may name, as ``package.Class``, with the names
    of its parameters. Imports all the allowed River packages, so it runs on first use."""
    found = []
    for package in sorted(ESTIMATOR_PACKAGES):
        try:
            module = importlib.import_module(f"river.{package}")
        except ImportError:  # a package this River version lacks: parse_estimator must say so
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
    return tuple(found)


#: Names that are not River classes, or are but must not be reachable.
NOT_RIVER = (
    "os.system", "eval", "__import__", "linear_model.__builtins__", "linear_model.Nope",
    "neural_net.MLPRegressor", "compose.Pipeline.__init__", "tree.splitter.Splitter",
    "linear_model.LogisticRegression.clone", "river.linear_model.LinearRegression", "drift.ADWIN",
    "ADWIN", "stats.Mean", "metrics.Accuracy", "optim.SGD", "datasets.Phishing",
)  # fmt: skip
#: Literal spellings a River constructor rarely expects: sizes past C's integers, a hex number
#: past Python's digit limit for ``repr``, infinities, complex numbers, lone surrogates.
HOSTILE_LITERALS = (
    "0", "-1", "1099511627776", "9223372036854775808", "18446744073709551616", str(10**400),
    "0x" + "f" * 4000, "9" * 5000, "1e999", "-1e999", "1e308", "-0.0", "1j", "...", "b'x'",
    "'\\ud800'", "'\\x00'", "2**63", "None", "True", "''", "'x' * 10**9", "[]", "{}", "()",
    "{[1]}", "{[1]: 1}", "{1: {}}", "set()", "-'x'", "not 1",
)  # fmt: skip
#: Whole expressions that must be refused: code, comprehension, star-arguments, walrus, ...
HOSTILE_EXPRESSIONS = (
    "__import__('os').system('true')", "(lambda: 1)()", "[x for x in ()]",
    "linear_model.LinearRegression(**{})", "linear_model.LinearRegression(*[1])",
    "linear_model.LinearRegression(l2=(x := 1))", "f'{1}'", "linear_model.LinearRegression",
    "linear_model.LinearRegression()()", "linear_model.LinearRegression().clone()",
    "linear_model.LinearRegression(l2=a.b.c)", "(yield)", "await x", "1 if 1 else 2",
    "linear_model.LinearRegression() | 1", "stats.Mean() + stats.Mean()",
    "linear_model.LinearRegression.__init__.__globals__['os']", "getattr(linear_model, 'x')()",
    "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
)  # fmt: skip

small_literals = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 20), st.floats(), st.text(max_size=4)
).map(repr)
literals = st.recursive(
    small_literals | st.sampled_from(HOSTILE_LITERALS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(inner, max_size=3).map(lambda xs: "(" + "".join(x + ", " for x in xs) + ")"),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: "{" + ", ".join(xs) + "}"),
        st.lists(st.tuples(inner, inner), max_size=3).map(
            lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"
        ),
    ),
    max_leaves=6,
)
classes = st.deferred(lambda: st.sampled_from(river_classes())) | st.sampled_from(NOT_RIVER).map(
    lambda name: (name, ())
)


@st.composite
def calls(draw: st.DrawFn, depth: int = 2) -> str:
    """``package.Class(args)``: literals or (nested) calls, by position or by parameter name."""
    name, params = draw(classes)
    args = []
    for _ in range(draw(st.integers(0, 2))):
        nest = depth > 0 and draw(st.booleans())
        value = draw(calls(depth - 1) if nest else literals)
        by_name = len(params) > 0 and draw(st.booleans())
        args.append(f"{draw(st.sampled_from(params))}={value}" if by_name else value)
    return f"{name}({', '.join(args)})"


@st.composite
def pipelines(draw: st.DrawFn) -> str:
    """Calls joined with ``|`` and ``+``, sometimes in brackets."""
    steps = draw(st.lists(calls(), min_size=1, max_size=4))
    expression = steps[0]
    for step in steps[1:]:
        expression += draw(st.sampled_from([" | ", " + ", "|", " - "])) + step
    return f"({expression})" if draw(st.booleans()) else expression


#: Inputs as deep or as long as the Python parser, or a recursive walk over its tree, can take.
deep_expressions = st.one_of(
    st.integers(1, 1500).map(lambda n: " | ".join(["preprocessing.StandardScaler()"] * n)),
    st.integers(1, 1500).map(lambda n: " + ".join(["preprocessing.StandardScaler()"] * n)),
    st.integers(1, 6000).map(lambda n: "a" + ".a" * n + "()"),
    st.integers(1, 6000).map(lambda n: "linear_model.LinearRegression(l2=" + "-" * n + "1)"),
    st.integers(1, 300).map(lambda n: "(" * n + "preprocessing.StandardScaler()" + ")" * n),
    st.integers(1, 300).map(
        lambda n: "linear_model.LinearRegression(l2=" + "[" * n + "]" * n + ")"
    ),
)

SYNTAX = "()[]{},.=|+-*/:;'\"\\_ 0123456789ex\n"


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with up to three characters deleted, inserted or replaced."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(SYNTAX) | st.characters())
        how = draw(st.sampled_from(["delete", "insert", "replace"]))
        if how == "insert":
            text = text[:at] + char + text[at:]
        else:
            text = text[:at] + (char if how == "replace" else "") + text[at + 1 :]
    return text


river_expressions = st.one_of(
    pipelines(),
    st.sampled_from(HOSTILE_EXPRESSIONS),
    deep_expressions,
    pipelines().flatmap(mutated),
    st.sampled_from(HOSTILE_EXPRESSIONS).flatmap(mutated),
)
#: Any text, lone surrogates included, and text spelled from the expression's own tokens.
arbitrary_text = st.one_of(
    # A list of characters, joined: given this union as its alphabet, st.text draws no
    # surrogates.
    st.lists(st.characters(categories=["Cs"]) | st.characters(), max_size=60).map("".join),
    st.lists(
        st.sampled_from([*SYNTAX, "linear_model", "LinearRegression", "ADWIN", "drift", "__"])
    ).map("".join),
)


def _parse_both(expression: str) -> None:
    """An expression as a pipeline, then as a drift detector (where bare names resolve)."""
    for parse in (parse_estimator, parse_drift_detector):
        try:
            parse(expression)
        except SpecError:
            pass


SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)


@settings(SETTINGS, max_examples=100)
@given(expression=arbitrary_text)
def test_arbitrary_text_is_built_or_refused_with_spec_error(expression: str) -> None:
    assert_built_or_spec_error(isolated(lambda: _parse_both(expression)), repr(expression))


@SETTINGS
@given(expression=river_expressions)
def test_river_expressions_are_built_or_refused_with_spec_error(expression: str) -> None:
    assert_built_or_spec_error(isolated(lambda: _parse_both(expression)), repr(expression))


# Models files -----------------------------------------------------------------------------------

METRICS = sorted(set().union(*ALLOWED.values()))
PIPELINES = (
    "linear_model.LogisticRegression()", "linear_model.LinearRegression()",
    "preprocessing.StandardScaler() | linear_model.LogisticRegression()",
    "tree.HoeffdingTreeClassifier()", "naive_bayes.GaussianNB()",
    "preprocessing.StandardScaler() | linear_model.LinearRegression()",
)  # fmt: skip
DETECTORS = ("ADWIN()", "DDM()", "PageHinkley()", "KSWIN()", "drift.ADWIN(delta=0.01)", "EDDM()")
#: Parameters a search grid may name, good (``l2``, ``LogisticRegression.l2``) and bad.
GRID_KEYS = (
    "l2", "intercept_lr", "LogisticRegression.l2", "LinearRegression.l2",
    "StandardScaler.with_std", "grace_period", "splitter", "optimizer", "nope", "a.b.c", "",
)  # fmt: skip

toml_leaves = st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
toml_values = st.recursive(
    toml_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
expressions = st.sampled_from(PIPELINES) | river_expressions
detectors = st.sampled_from(DETECTORS) | river_expressions
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "task": st.sampled_from(["binary", "multiclass", "regression", "ranking"]),
    "pipeline": expressions,
    "preprocess": st.sampled_from(["auto", "none", "all"]),
    "metrics": st.lists(st.sampled_from(METRICS), max_size=3),
    "rolling_window": st.integers(),
    "drift": st.lists(detectors, max_size=2),
    "drift_features": st.dictionaries(
        st.text(max_size=4), st.lists(detectors, max_size=2), max_size=2
    ),
    "drift_policy": st.sampled_from(["alert", "reset", "retrain", "promote", "panic"]),
    "challengers": st.dictionaries(st.text(max_size=8), expressions, max_size=2),
    "search": st.fixed_dictionaries(
        {
            "grid": st.dictionaries(
                st.sampled_from(GRID_KEYS), st.lists(toml_leaves, max_size=3), max_size=3
            )
        },
        optional={"budget": st.integers(-1, 70), "seed": st.integers()},
    ),
    "promotion_metric": st.sampled_from(METRICS),
    "promotion_margin": st.floats(),
    "auto_promote": st.booleans(),
    "snapshot_every": st.integers(),
    "max_categories": st.integers(),
    "max_features": st.integers(),
    "name": st.text(max_size=5),  # the loader names the model after its table itself
}


@st.composite
def model_tables(draw: st.DrawFn) -> dict[str, Any]:
    """A ``[models.NAME]`` table: each field absent, plausible, or any TOML value at all."""
    table: dict[str, Any] = {}
    for field, plausible in FIELDS.items():
        if field in ("task", "pipeline") or draw(st.integers(0, 3)) == 0:
            table[field] = draw(plausible | toml_values if draw(st.booleans()) else plausible)
    if draw(st.integers(0, 5)) == 0:
        table[draw(st.text(max_size=8))] = draw(toml_values)
    return table


def toml_value(value: Any) -> str:
    """``value`` in TOML: JSON's string escapes are TOML's, and tables are inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{toml_value(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def models_file(models: dict[str, dict[str, Any]]) -> str:
    return "".join(
        f"[models.{toml_value(name)}]\n"
        + "".join(f"{toml_value(key)} = {toml_value(value)}\n" for key, value in table.items())
        for name, table in models.items()
    )


def load_text(text: str | bytes) -> Outcome:
    """Write ``text`` as a models file and load it in a child process."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "models.toml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        return isolated(lambda: load_specs(path))


models_files = st.dictionaries(st.text(max_size=6), model_tables(), min_size=1, max_size=2).map(
    models_file
)


@settings(SETTINGS, max_examples=80)
@given(text=models_files | models_files.flatmap(mutated))
def test_models_files_load_or_are_refused_with_spec_error(text: str) -> None:
    assert_built_or_spec_error(load_text(text), text)


@settings(SETTINGS, max_examples=40)
@given(text=st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_files_load_or_are_refused_with_spec_error(text: str | bytes) -> None:
    assert_built_or_spec_error(load_text(text), repr(text))


# Inputs found by these tests and by the fuzz harness, kept so each one reads as its own failure
# until it is refused with a SpecError. ----------------------------------------------------------

_HEAD = '[models.m]\ntask = "binary"\npipeline = "linear_model.LogisticRegression()"\n'
_GRID = ", ".join(f'"{k}" = [{", ".join(map(str, range(100)))}]' for k in "abcd")

KNOWN_EXPRESSIONS = {
    "lone surrogate": "linear_model.LinearRegression(l2='\ud800')",
    "unhashable set element": "linear_model.LinearRegression(l2={[1]})",
    "unhashable dict key": "linear_model.LinearRegression(l2={[1]: 2})",
    "hex literal past the repr digit limit": "0x" + "f" * 4000,
    "hex literal past the repr digit limit, called": "(0x" + "f" * 4000 + ")()",
    "long pipeline": " | ".join(["preprocessing.StandardScaler()"] * 1000),
    "longer pipeline": " | ".join(["preprocessing.StandardScaler()"] * 3000),
    "long attribute chain": "a" + ".a" * 1000 + "()",
    "deep unary minus": "linear_model.LinearRegression(l2=" + "-" * 20000 + "1)",
    "package River lacks": "neural_net.MLPRegressor()",
    "stats added": "stats.Mean() + stats.Mean()",
    "AttributeError in River": "tree.HoeffdingTreeClassifier(splitter=-1)",
    "ZeroDivisionError in River": "sketch.Counter(epsilon=0)",
    "KeyError in River": "linear_model.PAClassifier(mode=None)",
    "IndexError in River": "metrics.ROCAUC(n_thresholds=-1)",
    "OverflowError in River": "stats.RollingMax(window_size=9223372036854775808)",
    "RuntimeError in River": "misc.ZstdClassifier()",
    "Rust panic in River": "drift.ADWIN(max_buckets=9223372036854775808)",
    "Rust abort in River": "drift.ADWIN(max_buckets=1099511627776)",
    "unbounded loop in River": "cluster.KMeans(n_clusters=9223372036854775808)",
}
KNOWN_FILES = {
    "a name field": '[models.m]\ntask = "binary"\nname = "x"\n' + _HEAD.split("\n", 2)[2],
    "not UTF-8": _HEAD.encode() + b"# \xff\n",
    "deep arrays": "x = " + "[" * 2000 + "]" * 2000 + "\n",
    "deep inline tables": "x = " + "{a = " * 400 + "1" + " }" * 400 + "\n",
    "pipeline TypeError": _HEAD.replace("()", "(l2={[1]})"),
    "drift detector panic": _HEAD + 'drift = ["ADWIN(max_buckets=9223372036854775808)"]\n',
    "challenger TypeError": _HEAD
    + 'challengers = {a = "linear_model.LinearRegression(l2={[1]})"}\n',
    "search clone AttributeError": _HEAD.replace(
        "linear_model.LogisticRegression", "tree.HoeffdingTreeClassifier"
    )
    + '[models.m.search]\ngrid = {"splitter" = [1]}\n',
    "search grid of 10**8 combinations": _HEAD + f"[models.m.search]\ngrid = {{{_GRID}}}\n",
}


@pytest.mark.parametrize("expression", KNOWN_EXPRESSIONS.values(), ids=KNOWN_EXPRESSIONS.keys())
def test_known_hostile_expressions_are_refused_with_spec_error(expression: str) -> None:
    assert_built_or_spec_error(isolated(lambda: _parse_both(expression)), expression[:200])


@pytest.mark.parametrize("text", KNOWN_FILES.values(), ids=KNOWN_FILES.keys())
def test_known_hostile_models_files_are_refused_with_spec_error(text: str | bytes) -> None:
    assert_built_or_spec_error(load_text(text), repr(text)[:200])
