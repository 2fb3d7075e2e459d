"""The search space of a tuning job: which parameters of a pipeline vary, and over what.

Each parameter is named by its path, as in the grid of a ``search`` table: a pipeline step
then one of its parameters (``LogisticRegression.l2``), or the parameter alone when the
estimator is not a pipeline, going deeper into parameters that are River objects themselves
(``LogisticRegression.optimizer.lr``, the learning rate of the step's optimizer). Each path
maps to a range, ``{low, high}`` with optional ``log``, ``step`` and ``points``, or to
``{choices}``. The space is checked against the estimator it tunes, River's constructors
included, so that a trial never starts from a value River refuses on its own.

A trial's values become one :meth:`~river.base.Base.clone` call: a parameter of a River object
is given as ``(class, {parameter: value})``, which ``clone`` hands to that object's own
``clone``, keeping the parameters not named (River's ``expand_param_grid`` does the same).

Examples
--------
>>> from streams.learning.pipeline import parse_estimator
>>> expression = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
>>> space = parse_space(
...     {"LogisticRegression.optimizer.lr": {"low": 0.01, "high": 1, "log": True},
...      "LogisticRegression.l2": {"low": 0, "high": 0.01}},
...     parse_estimator(expression))
>>> space.grid(default_points=3)
{'LogisticRegression.l2': [0.0, 0.005, 0.01], 'LogisticRegression.optimizer.lr': [0.01, 0.1, 1.0]}
>>> model = space.build(expression, {"LogisticRegression.l2": 0.001,
...                                  "LogisticRegression.optimizer.lr": 0.1})
>>> model["LogisticRegression"].optimizer.lr.learning_rate, model["LogisticRegression"].l2
(0.1, 0.001)
>>> parse_space({"LogisticRegression.l2": {"low": 0.1, "high": 0}}, parse_estimator(expression))
Traceback (most recent call last):
...
streams.learning.errors.InvalidSpace: space.LogisticRegression.l2.high: empty range: ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from river import base, compose

from streams.learning.errors import InvalidSpace, SpecError
from streams.learning.pipeline import _check_sizes, parse_estimator

#: Most dimensions a space holds, values a stepped range makes, and choices a dimension lists.
MAX_DIMENSIONS = 32
MAX_STEPS = 50
MAX_CHOICES = 50
#: Largest magnitude of any number, of the bounds of an integer range, and longest string.
MAX_NUMBER = 1e15
MAX_INTEGER = 10**9
MAX_STRING = 256
#: How many values a range without ``step`` offers to the grid, at least and at most.
POINTS = (2, 20)

_RANGE_KEYS = ("low", "high", "log", "step", "points")
#: What a refusal in the middle of River may raise; everything else is River's refusal.
_SYSTEM = (KeyboardInterrupt, SystemExit, GeneratorExit)

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Dimension:
    """One parameter's values: a range of ``kind`` ``int`` or ``float`` (``low`` to ``high``,
    log-scaled or not, in ``step`` s or not), or a list of ``choices``."""

    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    #: How many values the grid takes from a range without ``step`` (``None``: the default).
    points: int | None = None
    choices: tuple[Scalar, ...] = ()

    def values(self, default_points: int = 5) -> list[Any]:
        """The grid this dimension offers: the choices; every step; or ``points`` values
        spaced evenly (geometrically when ``log``), integers rounded and deduplicated."""
        if self.kind == "choice":
            return list(self.choices)
        assert self.low is not None and self.high is not None  # a range has both (parse_space)
        low, high = self.low, self.high
        if self.step is not None:
            n = round((high - low) / self.step)
            raw = [low + i * self.step for i in range(n)] + [high]
        else:
            points = self.points or default_points
            if not POINTS[0] <= points <= POINTS[1]:
                raise ValueError(f"points: from {POINTS[0]} to {POINTS[1]}, not {points}")
            if self.log:
                ratio = math.log(high / low)
                raw = [low * math.exp(ratio * i / (points - 1)) for i in range(points)]
            else:
                raw = [low + (high - low) * i / (points - 1) for i in range(points)]
            raw[0], raw[-1] = low, high
        tidy = [round(v) for v in raw] if self.kind == "int" else [_tidy(v) for v in raw]
        return list(dict.fromkeys(tidy))

    def public(self) -> dict[str, Any]:
        """The dimension as the API shows it."""
        if self.kind == "choice":
            return {"kind": "choice", "choices": list(self.choices)}
        return {
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "log": self.log,
            "step": self.step,
            "points": self.points,
        }


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a tuning job by parameter path, sorted; made by :func:`parse_space`."""

    dimensions: dict[str, Dimension]
    #: Each path prefix that leads to an object, with the class its parameters are cloned with
    #: (``None`` for a pipeline's step, which takes a plain dict).
    hops: dict[tuple[str, ...], type[Any] | None] = field(default_factory=dict, repr=False)

    def clone_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """One trial's ``{path: value}`` as the parameters of ``estimator.clone(...)``."""
        tree: dict[str, Any] = {}
        for path, value in values.items():
            if path not in self.dimensions:
                raise KeyError(f"the space has no dimension {path!r}")
            *parents, leaf = path.split(".")
            node = tree
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = value
        return self._wrap((), tree)

    def _wrap(self, prefix: tuple[str, ...], node: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, value in node.items():
            at = (*prefix, name)
            if at not in self.hops:  # a parameter's value
                params[name] = value
                continue
            inner = self._wrap(at, value)
            cls = self.hops[at]
            params[name] = inner if cls is None else (cls, inner)
        return params

    def build(self, pipeline_expression: str, values: dict[str, Any]) -> Any:
        """A fresh estimator from ``pipeline_expression``, with one trial's values."""
        return parse_estimator(pipeline_expression).clone(self.clone_params(values))

    def grid(self, default_points: int = 5) -> dict[str, list[Any]]:
        """The values each dimension offers, by path (see :meth:`Dimension.values`)."""
        return {path: d.values(default_points) for path, d in self.dimensions.items()}

    def public(self) -> dict[str, Any]:
        """The space as the API shows it."""
        return {path: d.public() for path, d in self.dimensions.items()}


def parse_space(fields: Any, estimator: Any) -> SearchSpace:
    """Validate a tuning request's ``space`` against the ``estimator`` it tunes.

    Raises :class:`InvalidSpace` naming the field at fault, ``space.<path>[.<key>]``.
    """
    if not isinstance(fields, dict):
        raise InvalidSpace(
            "space: an object mapping a parameter path to a dimension, like"
            f' {{"LogisticRegression.l2": {{"low": 0, "high": 0.1}}}}, not {_kind(fields)}',
            "space",
        )
    if not fields:
        raise InvalidSpace("space: name at least one parameter to tune", "space")
    if len(fields) > MAX_DIMENSIONS:
        raise InvalidSpace(
            f"space: {len(fields)} dimensions, over the {MAX_DIMENSIONS} a tuning job takes",
            "space",
        )
    if not all(isinstance(path, str) for path in fields):
        raise InvalidSpace("space: parameter paths are strings", "space")
    dimensions: dict[str, Dimension] = {}
    hops: dict[tuple[str, ...], type[Any] | None] = {}
    owners: dict[str, Any] = {}
    for path in sorted(fields):
        owners[path] = _locate(estimator, path, hops)
        dimensions[path] = _dimension(fields[path], f"space.{path}")
    for path in dimensions:
        parts = path.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent in dimensions:
                raise InvalidSpace(
                    f"space.{path}: {parent} is a dimension itself, so its parameters cannot be",
                    f"space.{path}",
                )
    space = SearchSpace(dimensions, hops)
    for path, dimension in dimensions.items():
        _check_river(estimator, space, path, dimension, owners[path])
    return space


def _locate(estimator: Any, path: str, hops: dict[tuple[str, ...], type[Any] | None]) -> Any:
    """The object whose parameter ``path`` names; records the hops that lead to it."""
    where = f"space.{path}"
    parts = path.split(".")
    if not all(parts):
        raise InvalidSpace(
            f"{where}: a path is step and parameter names joined by dots, like"
            " LogisticRegression.l2 or LogisticRegression.optimizer.lr",
            where,
        )
    obj = estimator
    for depth, name in enumerate(parts):
        last = depth == len(parts) - 1
        at = ".".join(parts[:depth])
        steps = _steps(obj)
        if steps is not None:
            kind = "pipeline" if isinstance(obj, compose.Pipeline) else "union"
            whose = f"the {kind} {at}" if at else f"the {kind}"
            if name not in steps:
                raise InvalidSpace(
                    f"{where}: {whose} has no step {_short(name)}; its steps: {', '.join(steps)}",
                    where,
                )
            if last:
                raise InvalidSpace(
                    f"{where}: {name} is a step, not a parameter; name one of its parameters:"
                    f" {', '.join(_params(steps[name])) or 'it has none'}",
                    where,
                )
            hops[tuple(parts[: depth + 1])] = None
            obj = steps[name]
            continue
        params = _params(obj)
        if name not in params:
            hint = ""
            if depth == 0 and name == type(obj).__name__:
                hint = f" (it is not a pipeline: name its parameters alone, like {parts[-1]})"
            raise InvalidSpace(
                f"{where}: {type(obj).__name__} takes no parameter {_short(name)};"
                f" its parameters: {', '.join(params) or 'none'}{hint}",
                where,
            )
        if last:
            return obj
        child = getattr(obj, name, None)
        if not isinstance(child, base.Base):
            raise InvalidSpace(
                f"{where}: {name} of {type(obj).__name__} is {_short(child)}, not a River"
                f" object, so it has no parameter {_short(parts[depth + 1])}",
                where,
            )
        hops[tuple(parts[: depth + 1])] = type(child)
        obj = child
    raise AssertionError("unreachable: the last part returns")  # pragma: no cover


def _steps(obj: Any) -> dict[str, Any] | None:
    """The named steps of a pipeline or a union (what their ``clone`` takes), else ``None``."""
    if isinstance(obj, compose.Pipeline):
        return dict(obj.steps)
    if isinstance(obj, compose.TransformerUnion):
        return dict(obj.transformers)
    return None


def _params(obj: Any) -> list[str]:
    """The parameters ``obj.clone`` takes by name."""
    try:
        return [name for name in obj._get_params() if name != "_POSITIONAL_ARGS"]
    except Exception:  # an object off River's conventions has no parameters to tune
        return []


def _dimension(spec: Any, where: str) -> Dimension:
    if not isinstance(spec, dict):
        raise InvalidSpace(
            f'{where}: a dimension is an object, a range {{"low": ..., "high": ...}} or'
            f' {{"choices": [...]}}, not {_kind(spec)}',
            where,
        )
    unknown = sorted(str(k) for k in spec if k not in (*_RANGE_KEYS, "choices"))
    if unknown:
        raise InvalidSpace(
            f"{where}: unknown key {_short(unknown[0])}; a range takes low, high, log, step and"
            " points, a choice takes choices",
            where,
        )
    is_range = any(k in spec for k in _RANGE_KEYS)
    if "choices" in spec and is_range:
        raise InvalidSpace(
            f"{where}: a dimension is a range (low, high, ...) or choices, not both", where
        )
    if "choices" in spec:
        return _choices(spec["choices"], f"{where}.choices")
    if not is_range:
        raise InvalidSpace(f"{where}: a dimension needs low and high, or choices", where)
    return _range(spec, where)


def _range(spec: dict[str, Any], where: str) -> Dimension:
    for key in ("low", "high"):
        if key not in spec:
            raise InvalidSpace(f"{where}.{key}: a range needs both low and high", f"{where}.{key}")
    low, high = _number(spec["low"], f"{where}.low"), _number(spec["high"], f"{where}.high")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise InvalidSpace(f"{where}.log: true or false, not {_kind(log)}", f"{where}.log")
    step = None if spec.get("step") is None else _number(spec["step"], f"{where}.step")
    points = spec.get("points")
    if points is not None and (type(points) is not int or not POINTS[0] <= points <= POINTS[1]):
        raise InvalidSpace(
            f"{where}.points: an integer from {POINTS[0]} to {POINTS[1]} (how many values the"
            f" grid takes from the range), not {_short(points)}",
            f"{where}.points",
        )
    is_int = type(low) is int and type(high) is int and (step is None or type(step) is int)
    for key, value in (("low", low), ("high", high)):
        if is_int and abs(value) > MAX_INTEGER:
            raise InvalidSpace(
                f"{where}.{key}: an integer range stays within ±{MAX_INTEGER:,}, not {value}",
                f"{where}.{key}",
            )
    if low >= high:
        raise InvalidSpace(
            f"{where}.high: empty range: high ({high!r}) must be above low ({low!r})",
            f"{where}.high",
        )
    if log and low <= 0:
        raise InvalidSpace(
            f"{where}.low: a log range starts above 0, not at {low!r}", f"{where}.low"
        )
    if step is not None:
        _check_step(low, high, step, log, points, where)
    if not is_int:
        low, high = float(low), float(high)
        step = None if step is None else float(step)
    return Dimension("int" if is_int else "float", low, high, log, step, points)


def _check_step(
    low: float, high: float, step: float, log: bool, points: int | None, where: str
) -> None:
    at = f"{where}.step"
    if log:
        raise InvalidSpace(f"{at}: a log range takes no step; drop step or log", at)
    if points is not None:
        raise InvalidSpace(
            f"{where}.points: points spaces a range without step; drop points or step",
            f"{where}.points",
        )
    if step <= 0:
        raise InvalidSpace(f"{at}: a step is above 0, not {step!r}", at)
    if step > high - low:
        raise InvalidSpace(f"{at}: step {step!r} is larger than the range {low!r} to {high!r}", at)
    count = (high - low) / step
    if count > MAX_STEPS - 1 + 1e-9:
        raise InvalidSpace(
            f"{at}: a step of {step!r} makes more than {MAX_STEPS} values from {low!r} to"
            f" {high!r}; take a larger step",
            at,
        )
    if type(low) is int and type(high) is int and type(step) is int:
        whole = (high - low) % step == 0
    else:
        whole = abs(count - round(count)) <= 1e-9 * max(1.0, count)
    if not whole:
        raise InvalidSpace(
            f"{at}: the range {low!r} to {high!r} is not a whole number of steps of {step!r};"
            " make high - low a multiple of step",
            at,
        )


def _choices(choices: Any, where: str) -> Dimension:
    if not isinstance(choices, list | tuple):
        raise InvalidSpace(f"{where}: a list of values, not {_kind(choices)}", where)
    if not choices:
        raise InvalidSpace(f"{where}: name at least one choice", where)
    if len(choices) > MAX_CHOICES:
        raise InvalidSpace(f"{where}: {len(choices)} choices, over {MAX_CHOICES}", where)
    seen: set[tuple[type[Any], Any]] = set()
    for i, choice in enumerate(choices):
        at = f"{where}.{i}"
        if isinstance(choice, int | float) and not isinstance(choice, bool):
            _number(choice, at)
        elif isinstance(choice, str):
            if len(choice) > MAX_STRING:
                raise InvalidSpace(f"{at}: a choice string is at most {MAX_STRING} characters", at)
        elif choice is not None and not isinstance(choice, bool):
            raise InvalidSpace(
                f"{at}: a choice is a string, a number, true, false or null, not {_kind(choice)}",
                at,
            )
        if (type(choice), choice) in seen:
            raise InvalidSpace(f"{at}: {choice!r} is listed twice; list each choice once", at)
        seen.add((type(choice), choice))
    return Dimension("choice", choices=tuple(choices))


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpace(f"{where}: a number, not {_kind(value)}", where)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidSpace(f"{where}: a finite number, not {value!r}", where)
    if abs(value) > MAX_NUMBER:
        raise InvalidSpace(f"{where}: numbers stay within ±1e15, not {_short(value)}", where)
    return value


def _check_river(estimator: Any, space: SearchSpace, path: str, dim: Dimension, owner: Any) -> None:
    """Build the estimator with each bound (or choice) alone: River must take it."""
    where = f"space.{path}"
    name = path.rpartition(".")[2]
    for value in dim.choices if dim.kind == "choice" else (dim.low, dim.high):
        try:
            # Sizes River allocates eagerly, as a pipeline expression's are bounded.
            _check_sizes(type(owner), [], {name: value})
        except SpecError as exc:
            raise InvalidSpace(f"{where}: {exc}", where) from None
        try:
            estimator.clone(space.clone_params({path: value}))
        except BaseException as exc:  # River's refusals are of every kind, Rust panics too
            if isinstance(exc, _SYSTEM):
                raise
            raise InvalidSpace(
                f"{where}: River refused {_short(value)}: {_short(exc)}", where
            ) from None


def _tidy(value: float) -> float:
    """``value`` to 12 significant digits: 0.3, not 0.30000000000000004."""
    return float(f"{value:.12g}")


def _kind(value: Any) -> str:
    """The JSON name of ``value``'s type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: object, limit: int = 80) -> str:
    """``repr`` (or ``str`` of an exception), cut short; never raises."""
    try:
        text = str(value) if isinstance(value, BaseException) else repr(value)
    except ValueError:  # an integer of over 4300 digits
        text = type(value).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
