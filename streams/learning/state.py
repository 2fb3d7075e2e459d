"""What a snapshot of a model carries, and how a model becomes a snapshot again.

Everything needed to resume exactly: the race of candidates (estimators and metrics), drift
detectors and policy, the dedupe window, the label join, the feature guard, the counters,
the sampled history and the version; plus, in the snapshot, the spec and the offsets of the
input partitions the model has consumed.
"""

from __future__ import annotations

from typing import Any, ClassVar

from streams.learning.counters import Counters
from streams.learning.spec import ModelSpec


class SnapshotState:
    """Mixed into :class:`~streams.learning.model.OnlineModel`: its state as a snapshot."""

    name: str
    spec: ModelSpec
    counters: Counters
    offsets: dict[str, int]
    n_learned_at_snapshot: int

    #: Attributes a snapshot carries: everything needed to resume exactly.
    _STATE: ClassVar[tuple[str, ...]] = (
        "race", "drift", "policy", "dedupe", "labels", "guard", "counters", "history",
        "model_version", "last_event_at",
    )  # fmt: skip
    #: Counters the node keeps about a model from outside its steps: a step never changes
    #: them, so going back to a checkpoint (see :mod:`streams.learning.journal`) keeps them.
    _OUTSIDE: ClassVar[tuple[str, ...]] = ("n_dead_letters", "n_model_errors")

    def learning_state(self) -> dict[str, Any]:
        """Everything the model has learned and counted (what a snapshot carries)."""
        return {name: getattr(self, name) for name in self._STATE}

    def load_learning_state(self, state: dict[str, Any]) -> None:
        """Become the model ``state`` describes (from :meth:`learning_state`)."""
        for name in self._STATE:
            setattr(self, name, state[name])

    def outside_counters(self) -> dict[str, int]:
        return {name: getattr(self.counters, name) for name in self._OUTSIDE}

    def restore_outside_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            setattr(self.counters, name, value)

    def snapshot_state(self, offsets: dict[str, int]) -> dict[str, Any]:
        """The model's whole learning state with the offsets it has consumed."""
        state = self.learning_state()
        state["spec"] = self.spec.model_dump(mode="json")
        state["offsets"] = dict(offsets)
        return state

    def restore_state(self, state: dict[str, Any]) -> None:
        """Become the model a snapshot describes (same spec required)."""
        mine = self.spec.model_dump(mode="json")
        theirs = state.get("spec", {})
        for field_name in ("task", "pipeline", "preprocess", "metrics", "max_categories"):
            if theirs.get(field_name) != mine[field_name]:
                raise ValueError(
                    f"snapshot of {self.name!r} has {field_name}={theirs.get(field_name)!r},"
                    f" the models file says {mine[field_name]!r}"
                )
        self.load_learning_state(state)
        self.offsets = dict(state["offsets"])
        self.n_learned_at_snapshot = self.counters.n_learned
