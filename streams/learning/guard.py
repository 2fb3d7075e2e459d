"""What a model's pipeline can take, checked before River sees an event.

River's estimators raise in the middle of ``learn_one`` on values they cannot handle (a
``None`` or a string reaching ``StandardScaler``, a huge number squared in a Hoeffding tree),
and a failed ``learn_one`` can leave a model half-updated. So each feature value is checked
against what the pipeline is known to take before the model is touched:

- every number must be finite and at most :data:`MAX_MAGNITUDE` in size (non-finite floats
  are already missing values when they reach here, see :mod:`streams.learning.events`);
- the kinds a pipeline takes (numbers, strings, nulls, a feature changing kind) are found
  out once, when the model is built, by :func:`probe` on throwaway copies of the pipeline;
  with ``preprocess = "auto"`` the auto stage takes every kind;
- a model learns at most ``max_features`` feature names: new names past the cap are dropped
  (and counted), so a flood of unique names keeps memory flat;
- a prediction over HTTP sees only the features the model was given before (River's weight
  dicts insert the names they are asked about: an unknown name would grow the model).

Examples
--------
>>> from streams.learning.build import build_estimator
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="binary", preprocess="none",
...                  pipeline="preprocessing.StandardScaler() | linear_model.LogisticRegression()")
>>> guard = FeatureGuard(probe(spec), max_features=2)
>>> guard.admit({"x": 1.0, "y": True, "z": 3.0})
({'x': 1.0, 'y': True}, 1)
>>> guard.admit({"x": None})
Traceback (most recent call last):
...
streams.learning.errors.InvalidEvent: features.x is null, but StandardScaler | LogisticRegression \
needs a number; set preprocess = "auto" to impute missing values
>>> guard.known({"x": 2.0, "never-seen": 5.0})
{'x': 2.0}
"""

from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass
from typing import Any

from streams.learning.build import build_estimator
from streams.learning.errors import InvalidEvent
from streams.learning.spec import ModelSpec

logger = logging.getLogger(__name__)

#: Larger numbers overflow River's running statistics (a square past 1e308 raises).
MAX_MAGNITUDE = 1e100

_NUMBER, _STRING, _NULL = "number", "string", "null"
_WHAT = {_NUMBER: "a number", _STRING: "a string", _NULL: "null"}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a pipeline takes, as found by :func:`probe`.

    ``None`` for a kind means the probe could not tell (its warm-up failed): such values
    are let through and a failure is contained by rewinding the model.
    """

    #: The pipeline as users read it (``StandardScaler | LogisticRegression``).
    name: str
    numbers: bool | None = True
    strings: bool | None = True
    nulls: bool | None = True
    #: A feature may come as a number in one event and as a string in another.
    kind_changes: bool | None = True
    #: Every kind goes through the auto stage: nothing to refuse.
    auto: bool = False


class FeatureGuard:
    """Checks and bounds the features of one model's events.

    Parameters
    ----------
    capabilities
        What the model's pipeline takes (see :func:`probe`).
    max_features
        Largest number of distinct feature names the model learns from.
    """

    def __init__(self, capabilities: Capabilities, max_features: int = 10_000) -> None:
        self.capabilities = capabilities
        self.max_features = max_features
        #: The kind each feature came with first (numbers include bools).
        self._kinds: dict[str, str] = {}
        # Read for every feature of every event: kept at hand.
        self._refused = frozenset(
            kind
            for kind, allowed in (
                (_NUMBER, capabilities.numbers),
                (_STRING, capabilities.strings),
                (_NULL, capabilities.nulls),
            )
            if allowed is False
        )
        self._kind_changes = capabilities.kind_changes is not False
        # Nothing refused and kinds may change: the kind of a known name needs no checking.
        self._lenient = not self._refused and self._kind_changes

    def __len__(self) -> int:
        return len(self._kinds)

    def admit(self, x: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The features of an event the model may learn from, new names past the cap left
        out, and how many were left out; raises :class:`InvalidEvent` naming the first value
        the model cannot take (and then remembers nothing of the event)."""
        kinds, refused = self._kinds, self._refused
        if self._lenient and x.keys() <= kinds.keys():  # every name known: only the values
            for name, value in x.items():
                kind_of = type(value)
                if kind_of is float or kind_of is int or kind_of is bool:
                    if value > MAX_MAGNITUDE or value < -MAX_MAGNITUDE:
                        raise _too_large(name, value)
                elif kind_of is not str and value is not None:
                    _kind(name, value)  # raises: not a kind of feature value
            return x, 0
        new: list[tuple[str, str]] | None = None
        for name, value in x.items():
            # Exact types, inlined: this loop runs for every feature of every event.
            kind_of = type(value)
            if kind_of is float or kind_of is int or kind_of is bool:
                if value > MAX_MAGNITUDE or value < -MAX_MAGNITUDE:
                    raise _too_large(name, value)
                kind = _NUMBER
            else:
                kind = _kind(name, value)
            if kind in refused:
                raise self._refusal(name, value, kind)
            seen = kinds.get(name)
            if seen is None:
                if kind is not _NULL:
                    if new is None:
                        new = []
                    new.append((name, kind))
            elif kind != seen and kind is not _NULL and not self._kind_changes:
                raise InvalidEvent(
                    f"features.{name} is {_WHAT[kind]} ({_short(value)}), but"
                    f" {self.capabilities.name} learned it as {_WHAT[seen]}; send it as"
                    f' {_WHAT[seen]} or set preprocess = "auto"',
                    f"features.{name}",
                )
        if new is None:
            return x, 0
        room = max(0, self.max_features - len(kinds))
        for name, kind in new[:room]:
            kinds[name] = kind
        if len(new) <= room:
            return x, 0
        dropped = {name for name, _ in new[room:]}
        return {name: value for name, value in x.items() if name not in dropped}, len(dropped)

    def known(self, x: dict[str, Any]) -> dict[str, Any]:
        """The features of a prediction request the model can take, those it has never been
        given left out (so that predicting never changes the model); raises
        :class:`InvalidEvent` as :meth:`admit`."""
        kinds = self._kinds
        for name, value in x.items():
            kind = _kind(name, value)
            if kind in self._refused:
                raise self._refusal(name, value, kind)
            seen = kinds.get(name)
            if seen is not None and kind not in (seen, _NULL) and not self._kind_changes:
                raise InvalidEvent(
                    f"features.{name} is {_WHAT[kind]} ({_short(value)}), but"
                    f" {self.capabilities.name} learned it as {_WHAT[seen]}",
                    f"features.{name}",
                )
        return {name: value for name, value in x.items() if name in kinds}

    def _refusal(self, name: str, value: Any, kind: str) -> InvalidEvent:
        """Why the pipeline cannot take this kind of value, and what to do about it."""
        caps = self.capabilities
        hint = (
            'set preprocess = "auto" to impute missing values'
            if kind == _NULL
            else 'set preprocess = "auto" to encode strings'
            if kind == _STRING
            else "this pipeline takes no numbers"
        )
        return InvalidEvent(
            f"features.{name} is {_excerpt(value) if kind != _NULL else 'null'}, but"
            f" {caps.name} needs {_needs(caps)}; {hint}",
            f"features.{name}",
        )


def _kind(name: str, value: Any) -> str:
    """The kind of a value, or :class:`InvalidEvent` (:meth:`FeatureGuard.admit` inlines
    the number case)."""
    kind_of = type(value)
    if kind_of is float or kind_of is int or kind_of is bool:
        if value > MAX_MAGNITUDE or value < -MAX_MAGNITUDE:
            raise _too_large(name, value)
        return _NUMBER
    if kind_of is str:
        return _STRING
    if value is None:
        return _NULL
    raise InvalidEvent(
        f"features.{name} must be a number, string, bool or null, got {type(value).__name__}",
        f"features.{name}",
    )


def _too_large(name: str, value: Any) -> InvalidEvent:
    return InvalidEvent(
        f"features.{name} is {_excerpt(value)}, larger in magnitude than {MAX_MAGNITUDE:g},"
        " which River's running statistics cannot take",
        f"features.{name}",
    )


def _needs(caps: Capabilities) -> str:
    if caps.numbers and not caps.strings:
        return "a number"
    if caps.strings and not caps.numbers:
        return "a string"
    return "a value"


def _short(value: Any, limit: int = 40) -> str:
    """A value as an error sentence quotes it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(value: Any) -> str:  # after "is" in a sentence: a string says it is one
    return f"the string {_short(value)}" if isinstance(value, str) else _short(value)


def pipeline_name(estimator: Any) -> str:
    """``StandardScaler | LogisticRegression``: how users read a pipeline."""
    steps = getattr(estimator, "steps", None)
    if steps:
        return " | ".join(type(step).__name__ for step in steps.values())
    return type(estimator).__name__


# Labels the probe learns with, per task.
_PROBE_LABELS: dict[str, tuple[Any, ...]] = {
    "binary": (True, False),
    "multiclass": ("a", "b", "c"),
    "regression": (1.0, 2.5, -0.5),
}


def probe(spec: Any) -> Capabilities:
    """What ``spec``'s pipeline takes: each kind of value tried once on a throwaway copy,
    after a short warm-up on ordinary numbers. The result is the same for every model of the
    same pipeline, so it is computed once per pipeline."""
    return _probe(spec.task, spec.pipeline, spec.preprocess, spec.max_categories)


@functools.lru_cache(maxsize=256)
def _probe(task: str, pipeline: str, preprocess: str, max_categories: int) -> Capabilities:
    spec = ModelSpec.model_validate(
        {"name": "probe", "task": task, "pipeline": pipeline, "preprocess": preprocess,
         "max_categories": max_categories}
    )  # fmt: skip
    estimator = build_estimator(spec)
    name = pipeline_name(build_estimator(spec.model_copy(update={"preprocess": "none"})))
    if preprocess == "auto":
        return Capabilities(name, auto=True)
    labels = _PROBE_LABELS[task]
    classifier = task != "regression"

    def step(model: Any, x: dict[str, Any], i: int) -> None:
        if classifier:
            model.predict_proba_one(x)
        else:
            model.predict_one(x)
        model.learn_one(x, labels[i % len(labels)])

    def tries(model: Any, *xs: dict[str, Any]) -> bool:
        trial = copy.deepcopy(model)
        try:
            for i, x in enumerate(xs):
                step(trial, x, i)
        except Exception:  # any failure means "cannot take this"
            return False
        return True

    numbers = tries(estimator, *_numbers(40))
    if not numbers:
        strings = tries(estimator, *({"s": f"v{i % 3}", "t": f"w{i % 2}"} for i in range(40)))
        logger.warning("the probe of %s could not learn ordinary numbers", name)
        return Capabilities(name, numbers=None, strings=strings or None, nulls=None,
                            kind_changes=None)  # fmt: skip
    for i, x in enumerate(_numbers(40)):
        step(estimator, x, i)
    with_string = [{"a": 0.1, "b": 0.3, "s": "x"}, {"a": 0.2, "b": 0.1, "s": "y"}]
    strings = tries(estimator, *with_string)
    return Capabilities(
        name,
        numbers=True,
        strings=strings,
        nulls=tries(estimator, {"a": None, "b": 0.3}, {"a": 0.4, "b": None}),
        kind_changes=tries(estimator, {"a": "x", "b": 0.3})
        and (not strings or tries(estimator, *with_string, {"a": 0.3, "b": 0.2, "s": 0.5})),
    )


def _numbers(n: int) -> list[dict[str, Any]]:
    """Ordinary, deterministic numeric events: two features, some negative, some zero."""
    return [{"a": ((i * 37) % 17) / 4.0 - 2.0, "b": float(i % 5), "c": i % 2} for i in range(n)]
