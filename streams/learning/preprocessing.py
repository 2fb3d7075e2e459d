"""The ``preprocess = "auto"`` stage: impute, scale, encode, all online.

Examples
--------
>>> prep = AutoPreprocessor(max_categories=2)
>>> for x in [{"age": 30, "city": "Oslo"}, {"age": 50, "city": "Rome"}, {"city": "Lima"}]:
...     prep.learn_one(x)
>>> prep.transform_one({"age": None, "city": "Lima", "vip": True})
{'city=__other__': 1.0, 'vip': 1.0, 'age': 0.0}
"""

from __future__ import annotations

import math
from typing import Any

from river import base

#: The one-hot column that stands for every category past the cap.
OTHER = "__other__"

_isfinite = math.isfinite
_sqrt = math.sqrt


class Moments:
    """The running mean and standard deviation of one numeric feature: Welford's algorithm
    with the arithmetic of River's ``stats.Var()`` (``ddof=1``), so the numbers are the same,
    in plain floats (a feature is updated once per event and read twice).

    >>> moments = Moments()
    >>> for value in (3, 5, 4, 7, 10, 12):
    ...     moments.update(value)
    >>> round(moments.sd**2, 6), moments.mean
    (12.566667, 6.833333333333333)
    """

    __slots__ = ("m2", "mean", "n", "sd")

    def __init__(self, n: float = 0.0, mean: float = 0.0, m2: float = 0.0) -> None:
        self.n = n
        self.mean = mean
        self.m2 = m2
        self.sd = _sqrt(m2 / (n - 1.0)) if n > 1 else 0.0

    def update(self, x: float) -> None:
        n = self.n + 1.0
        mean_old = self.mean
        mean = mean_old + (1.0 / n) * (x - mean_old)  # River's Mean.update with w = 1.0
        m2 = self.m2 + (x - mean_old) * (x - mean)  # River's Var.update with w = 1.0
        self.n, self.mean, self.m2 = n, mean, m2
        self.sd = _sqrt(m2 / (n - 1.0)) if n > 1 else 0.0

    def __getstate__(self) -> tuple[float, float, float]:
        return self.n, self.mean, self.m2

    def __setstate__(self, state: tuple[float, float, float]) -> None:
        self.n, self.mean, self.m2 = state
        self.sd = _sqrt(self.m2 / (self.n - 1.0)) if self.n > 1 else 0.0


class AutoPreprocessor(base.Transformer):  # type: ignore[misc]
    """Numbers: missing values imputed with the running mean, then standard-scaled.
    Strings: one-hot, with at most ``max_categories`` categories per feature (the rest
    share one ``name=__other__`` column, so memory stays bounded). Bools: 0/1.

    Parameters
    ----------
    max_categories
        Largest number of distinct categories kept per string feature.
    """

    def __init__(self, max_categories: int = 100) -> None:
        self.max_categories = max_categories
        self._moments: dict[str, Moments] = {}
        self._vocab: dict[str, set[str]] = {}
        self._bools: set[str] = set()

    def learn_one(self, x: dict[str, Any]) -> None:
        moments = self._moments
        for name, value in x.items():
            # Exact types first (what JSON gives), in the order of the isinstance checks
            # below: this loop runs for every feature of every event.
            kind = type(value)
            if kind is float or kind is int:
                if _isfinite(value):
                    m = moments.get(name)
                    if m is None:
                        m = moments[name] = Moments()
                    m.update(value)
            elif kind is str:
                self._learn_category(name, value)
            elif value is not None:
                self._learn_other(name, value)

    def _learn_category(self, name: str, value: str) -> None:
        vocab = self._vocab.get(name)
        if vocab is None:
            vocab = self._vocab[name] = set()
        if len(vocab) < self.max_categories:
            vocab.add(value)

    def _learn_other(self, name: str, value: Any) -> None:
        """Bools, and subclasses of the JSON types (NumPy floats, say)."""
        if isinstance(value, bool):
            self._bools.add(name)
        elif isinstance(value, int | float):
            if _isfinite(value):
                self._moments.setdefault(name, Moments()).update(value)
        elif isinstance(value, str):
            self._learn_category(name, value)

    def transform_one(self, x: dict[str, Any]) -> dict[str, float]:
        moments = self._moments
        out: dict[str, float] = {}
        for name, value in x.items():
            kind = type(value)
            if kind is float or kind is int:
                if _isfinite(value):
                    m = moments.get(name)
                    if m is None:
                        out[name] = 0.0
                    else:
                        sd = m.sd
                        out[name] = (value - m.mean) / sd if sd > 0 else 0.0
            elif value is not None:
                self._transform_other(name, value, out)
        # Missing numbers (absent, null or non-finite) take the running mean: 0 once scaled.
        if not moments.keys() <= out.keys():
            for name in moments:
                out.setdefault(name, 0.0)
        return out

    def _transform_other(self, name: str, value: Any, out: dict[str, float]) -> None:
        """Bools, strings, and subclasses of the JSON types."""
        if isinstance(value, bool):
            out[name] = 1.0 if value else 0.0
        elif isinstance(value, str):
            vocab = self._vocab.get(name, ())
            out[f"{name}={value if value in vocab else OTHER}"] = 1.0
        elif isinstance(value, int | float) and _isfinite(value):
            m = self._moments.get(name)
            sd = m.sd if m is not None else 0.0
            out[name] = (float(value) - m.mean) / sd if m is not None and sd > 0 else 0.0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Snapshots taken before the moments were plain floats hold River's stats.Var.
        if "_var" in state:
            state["_moments"] = {
                name: Moments(var.mean.n, var.mean._mean, var._S)
                for name, var in state.pop("_var").items()
            }
        self.__dict__.update(state)

    def describe(self) -> dict[str, Any]:
        """What the stage does with each feature seen so far."""
        return {
            "numeric": {
                "features": sorted(self._moments),
                "missing": "imputed with the running mean",
                "scaling": "running standard score",
            },
            "categorical": {
                "features": {name: len(v) for name, v in sorted(self._vocab.items())},
                "encoding": "one-hot",
                "max_categories": self.max_categories,
                "overflow": f"name={OTHER}",
            },
            "boolean": {"features": sorted(self._bools), "encoding": "0/1"},
        }
