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

_OPERATORS: dict[type[ast.operator], str] = {ast.BitOr: "|", ast.Add: "+"}


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
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"not a valid expression: {exc.msg} (column {exc.offset})") from None
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

    def build(self, node: ast.expr) -> Any:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = self.build(node.left), self.build(node.right)
            try:
                return left | right if isinstance(node.op, ast.BitOr) else left + right
            except (TypeError, ValueError) as exc:
                op = _OPERATORS[type(node.op)]
                raise SpecError(f"cannot combine with {op!r}: {exc}") from None
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
        try:
            return cls(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{cls.__name__}(...) refused its arguments: {exc}") from None

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
            name = path or ast.unparse(func)
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
            return kind(items)
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                raise SpecError("'**' in a dict argument is not allowed")
            return {
                self._argument(k): self._argument(v)
                for k, v in zip(node.keys, node.values, strict=True)
                if k is not None
            }
        if isinstance(node, ast.Call | ast.BinOp):
            return self.build(node)
        raise SpecError(
            f"arguments must be literals or River objects, found {_describe(node)}"
            f" (column {node.col_offset})"
        )


def _dotted(node: ast.expr) -> str | None:
    """``a.b.C`` for an attribute chain of plain names, else ``None``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else f"{head}.{node.attr}"
    return None


def _describe(node: ast.AST) -> str:
    """A short human name for an AST node: ``a name 'x'``, ``a lambda``, ..."""
    if isinstance(node, ast.Name):
        return f"a name {node.id!r}"
    if isinstance(node, ast.Constant):
        return f"a literal {node.value!r}"
    return f"a {type(node).__name__.lower()} expression"
