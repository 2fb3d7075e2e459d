"""Build River estimators from pipeline expressions, safely.

A pipeline is written as River code, ``preprocessing.StandardScaler() |
linear_model.LogisticRegression()``, but it is never evaluated: the expression is parsed with
:mod:`ast` and only River classes called with literal arguments (or other River objects built
the same way) are accepted. Anything else is refused with a message naming the problem.

Examples
--------
>>> model = parse_estimator("preprocessing.StandardScaler() | linear_model.LogisticRegression()")
>>> type(model).__name__
'Pipeline'
>>> parse_estimator("__import__('os').system('true')")
Traceback (most recent call last):
...
streams.learning.errors.SpecError: only River classes can be called, not "__import__('os')..." ...
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import math
from typing import Any

from river import base

from streams.learning.errors import SpecError

#: River subpackages whose classes may appear in a pipeline or a detector expression.
ESTIMATOR_PACKAGES = frozenset(
    {
        "anomaly", "bandit", "cluster", "compose", "covariance", "drift", "dummy", "ensemble",
        "facto", "feature_extraction", "feature_selection", "forest", "imblearn", "linear_model",
        "metrics", "misc",
        "model_selection", "multiclass", "multioutput", "naive_bayes", "neighbors",
        "neural_net", "optim", "preprocessing", "proba", "reco", "rules", "sketch", "stats",
        "time_series", "tree",
    }
)  # fmt: skip

# River 0.26 has no neural_net: a package listed but missing would fail at import.
ESTIMATOR_PACKAGES = frozenset(
    p for p in ESTIMATOR_PACKAGES if importlib.util.find_spec(f"river.{p}") is not None
)

_OPERATORS: dict[type[ast.operator], str] = {ast.BitOr: "|", ast.Add: "+"}

#: Longest expression, and deepest nesting of calls, pipes and literals, read.
MAX_LENGTH = 4_000
MAX_DEPTH = 32
#: Sizes and counts River allocates eagerly (or in time growing faster than the size): an
#: integer argument past these would hang or abort the node at start-up.
MAX_INTEGER = 100_000
_SMALLER: dict[str, int] = {
    "n_models": 1_000, "n_estimators": 1_000, "n_thresholds": 100_000,
    "p": 100, "d": 100, "q": 100, "sp": 100, "sd": 100, "sq": 100, "m": 10_000,
}  # fmt: skip
#: Seeds may be any 32-bit value.
_SEEDS = frozenset({"seed", "random_state"})
#: What a refusal in the middle of River may raise; everything else is not River's refusal.
_SYSTEM = (KeyboardInterrupt, SystemExit, GeneratorExit)


def parse_estimator(
    expression: str,
    *,
    packages: frozenset[str] = ESTIMATOR_PACKAGES,
    expected: type[Any] = base.Estimator,
    bare: tuple[str, ...] = (),
) -> Any:
    """Parse a River expression into a fresh River object of type ``expected``.

    ``bare`` lists the River modules where an undotted class name (``ADWIN()``) is looked up.
    """
    if len(expression) > MAX_LENGTH:
        raise SpecError(f"the expression is {len(expression)} characters, over {MAX_LENGTH}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"not a valid expression: {exc.msg} (column {exc.offset})") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, lone surrogates
        raise SpecError(f"not a valid expression: {type(exc).__name__}") from None
    obj = _Builder(packages, bare).build(tree.body)
    if not isinstance(obj, expected):
        kind = getattr(expected, "__name__", str(expected))
        raise SpecError(f"{expression!r} builds a {type(obj).__name__}, not a {kind}")
    return obj


class _Builder:
    """Walks the expression tree, building objects only from whitelisted nodes."""

    def __init__(self, packages: frozenset[str], bare: tuple[str, ...] = ()) -> None:
        self.packages = packages
        self.bare = bare
        self.depth = 0

    def build(self, node: ast.expr) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise SpecError(f"the expression nests deeper than {MAX_DEPTH} levels")
            return self._build(node)
        finally:
            self.depth -= 1

    def _build(self, node: ast.expr) -> Any:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self.build(node.left), self.build(node.right)
            try:
                return left | right if isinstance(node.op, ast.BitOr) else left + right
            except SpecError:
                raise
            except BaseException as exc:
                if isinstance(exc, _SYSTEM):
                    raise
                op = _OPERATORS[type(node.op)]
                raise SpecError(f"cannot combine with {op!r}: {_short(exc)}") from None
        if isinstance(node, ast.Call):
            return self._call(node)
        raise SpecError(
            f"expected a River class call or a '|' pipeline, found {_describe(node)}"
            f" (column {node.col_offset})"
        )

    def _call(self, node: ast.Call) -> Any:
        cls = self._resolve(node.func)
        args = [self._argument(a) for a in node.args]
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                raise SpecError(f"'**' arguments are not allowed (column {kw.col_offset})")
            kwargs[kw.arg] = self._argument(kw.value)
        _check_sizes(cls, args, kwargs)
        try:
            return cls(*args, **kwargs)
        except SpecError:
            raise
        except BaseException as exc:  # River's refusals are of every kind, Rust panics too
            if isinstance(exc, _SYSTEM):
                raise
            raise SpecError(f"{cls.__name__}(...) refused its arguments: {_short(exc)}") from None

    def _resolve(self, func: ast.expr) -> type[Any]:
        path = _dotted(func)
        if path is not None and "." not in path:
            path = next(
                (
                    f"{m}.{path}"
                    for m in self.bare
                    if hasattr(importlib.import_module(f"river.{m}"), path)
                ),
                path,
            )
        if path is None or "." not in path:
            name = path or _source(func)
            raise SpecError(
                f"only River classes can be called, not {name!r} (column {func.col_offset})"
            )
        parts = path.split(".")
        if parts[0] not in self.packages:
            raise SpecError(
                f"{path!r} is not in an allowed River package (column {func.col_offset})"
            )
        if any(p.startswith("_") for p in parts):
            raise SpecError(f"private names are not allowed: {path!r}")
        obj: Any = importlib.import_module(f"river.{parts[0]}")
        for i, part in enumerate(parts[1:], start=1):
            if hasattr(obj, part):
                obj = getattr(obj, part)
                continue
            try:
                obj = importlib.import_module(f"river.{'.'.join(parts[: i + 1])}")
            except ImportError:
                raise SpecError(f"River has no {path!r}") from None
        if not (isinstance(obj, type) and issubclass(obj, base.Base)):
            raise SpecError(f"{path!r} is not a River class")
        return obj

    def _argument(self, node: ast.expr) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise SpecError(f"the expression nests deeper than {MAX_DEPTH} levels")
            value = self._literal(node)
        finally:
            self.depth -= 1
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"arguments must be finite numbers, found {value!r}")
        return value

    def _literal(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and not isinstance(node.value, bytes):
            return node.value
        if (
            isinstance(node, ast.UnaryOp)
            and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float)
            and not isinstance(node.operand.value, bool)
        ):
            return -node.operand.value
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = [self._argument(e) for e in node.elts]
            kind = {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)]
            try:
                return kind(items)
            except TypeError:  # {[1]}: a list cannot be a member of a set
                raise SpecError("a set holds only numbers, strings and tuples") from None
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise SpecError("'**' in a dict argument is not allowed")
            try:
                return {
                    self._argument(k): self._argument(v)
                    for k, v in zip(node.keys, node.values, strict=True)
                    if k is not None
                }
            except TypeError:
                raise SpecError("dict keys are numbers, strings or tuples") from None
        if isinstance(node, ast.Call | ast.BinOp):
            return self.build(node)
        raise SpecError(
            f"arguments must be literals or River objects, found {_describe(node)}"
            f" (column {node.col_offset})"
        )


def _dotted(node: ast.expr) -> str | None:
    """``a.b.C`` for an attribute chain of plain names, else ``None``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _check_sizes(cls: type[Any], args: list[Any], kwargs: dict[str, Any]) -> None:
    """Refuse integer arguments River would allocate (or compute) without bound for."""
    try:
        named = inspect.signature(cls).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):  # the constructor itself will say what is wrong
        named = {f"argument {i + 1}": a for i, a in enumerate(args)} | kwargs
    for name, value in named.items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if name in _SEEDS:
            if not 0 <= value < 2**32:
                raise SpecError(f"{cls.__name__}({name}=...) must be a 32-bit seed")
            continue
        limit = _SMALLER.get(name, MAX_INTEGER)
        if abs(value) > limit:
            raise SpecError(
                f"{cls.__name__}({name}={_short(value)}) is over {limit:,}, the largest size"
                " streamlearn lets River allocate"
            )


def _short(value: object, limit: int = 120) -> str:
    """``repr`` (or ``str`` of an exception), cut short; never raises."""
    try:
        text = str(value) if isinstance(value, BaseException) else repr(value)
    except ValueError:  # an integer of over 4300 digits
        text = (
            f"an integer of about {value.bit_length() * 0.30103:.0f} digits"
            if isinstance(value, int)
            else type(value).__name__
        )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _source(node: ast.AST) -> str:
    """The source text of ``node``, cut short (a huge literal cannot be written back)."""
    try:
        text = ast.unparse(node)
    except (ValueError, RecursionError):
        return _describe(node)
    return text if len(text) <= 120 else text[:119] + "…"


def _describe(node: ast.AST) -> str:
    """A short human name for an AST node: ``a name 'x'``, ``a lambda``, ..."""
    if isinstance(node, ast.Name):
        return f"a name {node.id!r}"
    if isinstance(node, ast.Constant):
        return f"a literal {_short(node.value)}"
    return f"a {type(node).__name__.lower()} expression"
