"""What a model does when its drift detectors fire: the ``drift_policy`` of its spec.

``alert`` only counts and publishes; ``reset`` starts the champion afresh (a clone of the
pipeline); ``retrain`` starts a background model at the detector's first warning and swaps
it in on drift (a fresh clone when no warning came first, as with ADWIN); ``promote`` hands
over to the best challenger (decided by the race, see :mod:`streams.learning.race`).

Examples
--------
>>> policy = DriftPolicy("retrain")
>>> policy.react(drifted=False, warning=True, build=lambda: "fresh"), policy.background
(None, 'fresh')
>>> policy.react(drifted=True, warning=False, build=lambda: "other"), policy.background
('fresh', None)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class DriftPolicy:
    """Reacts to the drift detectors on the error stream, one labelled event at a time.

    Parameters
    ----------
    policy
        ``alert``, ``reset``, ``retrain`` or ``promote``.
    """

    def __init__(self, policy: str) -> None:
        self.policy = policy
        #: The model trained since the last warning (``retrain``), swapped in on drift.
        self.background: Any = None

    def react(self, drifted: bool, warning: bool, build: Callable[[], Any]) -> Any:
        """The estimator the champion becomes now, or ``None`` to keep it."""
        if self.policy == "retrain" and warning and self.background is None:
            self.background = build()
        if not drifted or self.policy == "alert":
            return None
        replacement = self.background if self.background is not None else build()
        self.background = None
        return replacement

    def learn(self, x: dict[str, Any], y: Any) -> None:
        """The background model, if any, learns what the champion learns."""
        if self.background is not None:
            self.background.learn_one(x, y)
