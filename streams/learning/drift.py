"""Drift detectors on the error stream and on chosen features, with their public state.

Examples
--------
>>> monitor = DriftMonitor(("ADWIN()",), {}, task="regression")
>>> errors = [0.0] * 1000 + [5.0] * 1000
>>> fired = [i for i, e in enumerate(errors) if monitor.update_error(e, n_learned=i, now=0.0)]
>>> fired[:1]
[1023]
>>> monitor.state()[0]["n_detections"] >= 1
True
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from river import base

from streams.learning.errors import SpecError
from streams.learning.pipeline import parse_estimator

#: Internal state River exposes on its detectors, shown by ``GET /models/{name}/drift``.
_EXPOSED = ("estimation", "width", "variance", "total", "n_detections", "p_value", "n")


def parse_drift_detector(expression: str) -> Any:
    """A River drift detector from ``ADWIN()``, ``DDM()`` or ``drift.binary.DDM()``."""
    return parse_estimator(
        expression,
        packages=frozenset({"drift"}),
        expected=base.DriftDetector | base.BinaryDriftDetector,
        bare=("drift", "drift.binary"),
    )


@dataclass(slots=True)
class Watched:
    """One detector, what it watches, and how often it has fired."""

    expression: str
    input: str
    detector: Any
    n_detections: int = 0
    last_detection_at: datetime | None = None

    def state(self) -> dict[str, Any]:
        internal = {}
        for name in _EXPOSED:
            value = getattr(self.detector, name, None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                internal[name] = value if math.isfinite(value) else None
        return {
            "name": type(self.detector).__name__,
            "expression": self.expression,
            "input": self.input,
            "drift_detected": bool(self.detector.drift_detected),
            "warning_detected": bool(getattr(self.detector, "warning_detected", False)),
            "n_detections": self.n_detections,
            "last_detection_at": self.last_detection_at.isoformat()
            if self.last_detection_at
            else None,
            "internal": internal,
        }


@dataclass(slots=True)
class Detection:
    """One firing, as published on the ``drift`` topic."""

    detector: str
    input: str
    n_learned: int
    at: datetime
    detail: dict[str, Any] = field(default_factory=dict)


class DriftMonitor:
    """Feeds the error stream (and chosen features) to River detectors and records firings.

    Parameters
    ----------
    error_detectors
        Expressions of detectors fed with the error: 0/1 misclassification for classifiers,
        the absolute error for regression.
    feature_detectors
        For each feature name, expressions of detectors fed with its numeric values.
    task
        The model's task; binary (0/1) detectors are refused for regression errors.
    """

    def __init__(
        self,
        error_detectors: tuple[str, ...],
        feature_detectors: dict[str, tuple[str, ...]],
        task: str,
    ) -> None:
        self.watched = [Watched(e, "error", parse_drift_detector(e)) for e in error_detectors]
        for feature, expressions in feature_detectors.items():
            self.watched += [Watched(e, feature, parse_drift_detector(e)) for e in expressions]
        for w in self.watched:
            if isinstance(w.detector, base.BinaryDriftDetector) and (
                w.input != "error" or task == "regression"
            ):
                raise SpecError(
                    f"{w.expression} takes 0/1 inputs; use it on the error of a classifier only"
                )
        self._on_error = [w for w in self.watched if w.input == "error"]
        self._on_features = [w for w in self.watched if w.input != "error"]
        self.watches_features = bool(self._on_features)
        #: The latest detections, oldest first (for the dashboard's drift marks).
        self.recent: deque[Detection] = deque(maxlen=200)
        self.warning = False

    def update_error(self, error: float, n_learned: int, now: float) -> list[Detection]:
        """Feed one error; the detections it caused. Sets :attr:`warning` from the detectors."""
        self.warning = False
        detections = []
        for w in self._on_error:
            w.detector.update(error)
            self.warning = self.warning or bool(getattr(w.detector, "warning_detected", False))
            if w.detector.drift_detected:
                detections.append(self._record(w, n_learned, now))
        return detections

    def update_features(self, x: dict[str, Any], n_learned: int, now: float) -> list[Detection]:
        """Feed the watched features of one event; the detections it caused."""
        detections = []
        for w in self._on_features:
            value = x.get(w.input)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                w.detector.update(value)
                if w.detector.drift_detected:
                    detections.append(self._record(w, n_learned, now))
        return detections

    def _record(self, w: Watched, n_learned: int, seconds: float) -> Detection:
        now = datetime.fromtimestamp(seconds, tz=UTC)
        w.n_detections += 1
        w.last_detection_at = now
        detection = Detection(
            type(w.detector).__name__, w.input, n_learned, now, w.state()["internal"]
        )
        self.recent.append(detection)
        return detection

    def state(self) -> list[dict[str, Any]]:
        """Every detector's public state."""
        return [w.state() for w in self.watched]
