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

from river import base, stats

#: The one-hot column that stands for every category past the cap.
OTHER = "__other__"


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
        self._var: dict[str, stats.Var] = {}
        self._vocab: dict[str, set[str]] = {}
        self._bools: set[str] = set()

    def learn_one(self, x: dict[str, Any]) -> None:
        for name, value in x.items():
            if isinstance(value, bool):
                self._bools.add(name)
            elif isinstance(value, int | float):
                if math.isfinite(value):
                    self._var.setdefault(name, stats.Var()).update(value)
            elif isinstance(value, str):
                vocab = self._vocab.setdefault(name, set())
                if len(vocab) < self.max_categories:
                    vocab.add(value)

    def transform_one(self, x: dict[str, Any]) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, value in x.items():
            if isinstance(value, bool):
                out[name] = 1.0 if value else 0.0
            elif isinstance(value, str):
                vocab = self._vocab.get(name, ())
                out[f"{name}={value if value in vocab else OTHER}"] = 1.0
            elif isinstance(value, int | float) and math.isfinite(value):
                out[name] = self._scale(name, float(value))
        # Missing numbers (absent, null or non-finite) take the running mean: 0 once scaled.
        for name in self._var:
            out.setdefault(name, 0.0)
        return out

    def _scale(self, name: str, value: float) -> float:
        var = self._var.get(name)
        if var is None:
            return 0.0
        sd = math.sqrt(var.get())
        return (value - var.mean.get()) / sd if sd > 0 else 0.0

    def describe(self) -> dict[str, Any]:
        """What the stage does with each feature seen so far."""
        return {
            "numeric": {
                "features": sorted(self._var),
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
