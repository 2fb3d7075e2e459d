"""The race: a champion and its challengers, all candidates seeing the same events.

The champion's predictions are the ones served and published, and its metrics are those of
the predictions served (they carry on across promotions); each challenger learns in the
shadow and keeps its own metrics. A promotion swaps roles: the champion becomes a
challenger that can be promoted back.

Examples
--------
>>> from streams.learning.metrics import MetricTracker
>>> from streams.learning.pipeline import parse_estimator
>>> def tracker(): return MetricTracker("binary", ["Accuracy"], window=10)
>>> race = Race(
...     "m",
...     Candidate("default", "p", parse_estimator("linear_model.LogisticRegression()"), tracker()),
...     [Candidate("nb", "q", parse_estimator("naive_bayes.GaussianNB()"), tracker())],
... )
>>> race.promote("nb", "admin", metric="Accuracy", n_learned=0, model_version=1).to
'nb'
>>> race.champion.name, [c.name for c in race.challengers]
('nb', ['default'])
"""

from __future__ import annotations

import copy
from typing import Any

from river import metrics as metrics_module

from streams.learning.candidates import Candidate
from streams.learning.errors import UnknownCandidate
from streams.learning.records import Promotion


class Race:
    """The champion (whose metrics are those served) and the challengers."""

    def __init__(
        self,
        model: str,
        champion: Candidate,
        challengers: list[Candidate],
    ) -> None:
        self.model = model
        self.champion = champion
        self.challengers = challengers

    def shadow(self, x: dict[str, Any]) -> list[tuple[Any, Any]] | None:
        """Every challenger's prediction, made before anyone learns (``None`` if none)."""
        return [c.predict(x) for c in self.challengers] if self.challengers else None

    def learn(self, x: dict[str, Any], y: Any, shadow: list[tuple[Any, Any]] | None) -> None:
        """Each challenger scores the prediction it made before, then learns."""
        if shadow is not None:
            for candidate, prediction in zip(self.challengers, shadow, strict=False):
                candidate.learn(x, y, prediction)

    def best(self, metric: str, margin: float | None) -> Candidate | None:
        """The challenger with the best rolling ``metric``, if it beats the champion's served
        rolling metric by ``margin`` (any challenger, when ``margin`` is None)."""
        sign = 1.0 if getattr(metrics_module, metric)().bigger_is_better else -1.0
        champion = sign * self.champion.metrics.rolling()[metric]
        scored = [(sign * c.metrics.rolling()[metric], c) for c in self.challengers if c.n_learned]
        if not scored:
            return None
        score, best = max(scored, key=lambda pair: pair[0])
        if margin is not None and not score > champion + margin:
            return None
        return best

    def promote(
        self, name: str, reason: str, *, metric: str, n_learned: int, model_version: int
    ) -> Promotion:
        """Challenger ``name`` becomes the champion; the champion becomes a challenger with a
        copy of the metrics it served, which go on with the new champion."""
        index = next((i for i, c in enumerate(self.challengers) if c.name == name), None)
        if index is None:
            raise UnknownCandidate(self.model, name)
        winner, served = self.challengers[index], self.champion.metrics
        record = Promotion(
            self.model, self.champion.name, winner.name, reason, metric, served.rolling()[metric],
            winner.metrics.rolling()[metric], n_learned, model_version + 1,
        )  # fmt: skip
        retired = Candidate(
            self.champion.name,
            self.champion.pipeline,
            self.champion.estimator,
            copy.deepcopy(served),
        )
        retired.n_learned = n_learned
        self.challengers[index] = retired
        winner.metrics = served
        self.champion = winner
        return record

    def leaderboard(self, n_learned: int) -> list[dict[str, Any]]:
        """The champion (with the metrics of the predictions it served) first, then every
        challenger."""
        served = self.champion.metrics
        champion = {
            "name": self.champion.name, "role": "champion", "pipeline": self.champion.pipeline,
            "n_learned": n_learned, "cumulative": served.cumulative(),
            "rolling": served.rolling(), "microseconds_per_event": None, "memory_bytes": None,
        }  # fmt: skip
        return [champion, *(c.public("challenger") for c in self.challengers)]
