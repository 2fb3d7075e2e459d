"""Atomic steps for a model: a checkpoint of its state and every step taken since.

River's ``learn_one`` mutates as it goes, so an estimator that raises halfway (on a value no
check could foresee) is left half-updated. Copying the model before every event would cost
more than learning it; instead a :class:`Journal` keeps one checkpoint (a deep copy of the
learning state) and the steps taken since, in order. When a step fails, the model goes back to the
checkpoint and takes every step since once more, except the failed one: River being
deterministic, it is then exactly the model it was before that step. A new checkpoint is
taken when the journal is full, so its memory stays bounded.

Examples
--------
>>> from streams.learning.events import Event
>>> from streams.learning.model import Limits, OnlineModel
>>> from streams.learning.spec import ModelSpec
>>> spec = ModelSpec(name="m", task="regression", pipeline="linear_model.LinearRegression()")
>>> model, journal = OnlineModel(spec, Limits()), Journal()
>>> def learn(m, e): return m.process(e, now=0.0)
>>> _ = journal.run(model, learn, Event("e1", "m", {"x": 1.0}, 2.0))
>>> def broken(m, e):
...     m.process(e, now=0.0)
...     raise ArithmeticError("halfway")
>>> journal.run(model, broken, Event("e2", "m", {"x": 3.0}, 6.0))
Traceback (most recent call last):
...
ArithmeticError: halfway
>>> model.n_learned, model.counters.n_events
(1, 1)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from streams.learning.errors import InvalidEvent

if TYPE_CHECKING:
    from streams.learning.model import OnlineModel

_R = TypeVar("_R")
StepFunction = Callable[["OnlineModel", Any], Any]


class Journal:
    """Runs one model's steps so that a failed step leaves the model as it was.

    Parameters
    ----------
    max_steps
        Steps kept before a new checkpoint is taken.
    max_values
        Feature values those steps may hold at most (wide events fill it sooner).
    """

    def __init__(self, max_steps: int = 20_000, max_values: int = 200_000) -> None:
        self.max_steps = max_steps
        self.max_values = max_values
        self._checkpoint: dict[str, Any] | None = None
        self._steps: list[tuple[StepFunction, Any]] = []
        self._values = 0

    def clear(self) -> None:
        """Forget the checkpoint: the model was changed outside its steps (a restore, an
        admin promotion), so the next step takes a new one."""
        self._checkpoint = None
        self._steps.clear()
        self._values = 0

    def run(self, model: OnlineModel, step: Callable[[OnlineModel, Any], _R], item: Any) -> _R:
        """``step(model, item)``, atomically.

        :class:`InvalidEvent` is raised before the model is touched and passes through; any
        other exception passes through too, after the model has been brought back to the
        state it had before this step.
        """
        if (
            self._checkpoint is None
            or len(self._steps) >= self.max_steps
            or (self._values >= self.max_values)
        ):
            self._checkpoint = copy.deepcopy(model.learning_state())
            self._steps.clear()
            self._values = 0
        try:
            result = step(model, item)
        except InvalidEvent:
            raise
        except Exception:
            self.rewind(model)
            raise
        self._steps.append((step, item))
        self._values += len(getattr(item, "features", ()))
        return result

    def rewind(self, model: OnlineModel) -> None:
        """Back to the checkpoint, then every recorded step again (their outputs are known
        already). Counters kept outside the steps (dead letters, model errors) stay."""
        assert self._checkpoint is not None  # run() took one before the step
        kept = model.outside_counters()
        # A copy of the checkpoint: it may serve another rewind before the next one is taken.
        model.load_learning_state(copy.deepcopy(self._checkpoint))
        for step, item in self._steps:
            try:
                step(model, item)
            except InvalidEvent:  # refused again, exactly as the first time
                continue
        model.restore_outside_counters(kept)
