"""From tuning to the live race: a done job's best configurations become challengers.

With ``challengers_from_tuning = k`` in a model's spec, the node that ran the job writes the
next version of the spec through the registry with ``tuned`` set to the best ``k``
configurations, named ``tuned-<job>-1`` (the best), ``tuned-<job>-2``, ... That change
applies in place (:func:`streams.learning.changes.join_tuned`): the champion keeps what it
learned, the new challengers start learning from the next event, and promotion works as for
any challenger. The configurations of an earlier job leave the race, unless one of them is
the champion by then.
"""

from __future__ import annotations

from typing import Any

from streams.deployments import Deployments
from streams.learning.catalog import spec_from_fields
from streams.tuning.progress import best_configurations


async def join_race(
    deployments: Deployments, model: str, job: str, progress: dict[str, Any]
) -> dict[str, Any]:
    """Hand the best configurations of ``job`` to ``model``'s race when its spec asks for
    them; what became of them (shown with the job as ``challengers``)."""
    current = deployments.catalog.current(model)
    if current is None:
        return {"state": "not joined", "names": [], "detail": f"model {model!r} is retired"}
    k = current.spec.challengers_from_tuning
    if k == 0:
        return {
            "state": "not asked",
            "names": [],
            "detail": "challengers_from_tuning is 0; with k, the best k configurations join"
            " the race",
        }
    best = best_configurations(progress, k)
    tuned = {f"tuned-{job}-{rank}": values for rank, values in enumerate(best, start=1)}
    spec = spec_from_fields(model, {**current.fields(), "tuned": tuned})
    change = await deployments.put(spec, who=f"tuning job {job}")
    version = change.new.version if change.new is not None else None
    return {"state": "joined", "names": list(tuned), "version": version}
