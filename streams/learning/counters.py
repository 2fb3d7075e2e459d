"""What a model counts, declared once: the API, Prometheus and snapshots all read this.

Examples
--------
>>> counters = Counters()
>>> counters.n_events += 1
>>> counters.as_dict()["n_events"], COUNTERS["n_events"].metric
(1, 'events')
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import NamedTuple


@dataclass(slots=True)
class Counters:
    """A model's counters, all of them monotonic."""

    n_events: int = 0
    n_predicted: int = 0
    n_learned: int = 0
    n_duplicates: int = 0
    n_dead_letters: int = 0
    n_missing_values: int = 0
    n_pending_expired: int = 0
    n_labels_unmatched: int = 0
    n_labels_duplicate: int = 0
    n_labels_early: int = 0
    n_drifts: int = 0
    n_model_errors: int = 0
    n_features_dropped: int = 0
    n_rerouted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}


class Counter(NamedTuple):
    """How one counter is exported: ``streamlearn_<metric>_total{model}``, and its help."""

    metric: str
    help: str


#: Every counter with its Prometheus name and help, in the order of the API.
COUNTERS: dict[str, Counter] = {
    "n_events": Counter("events", "Valid events received, duplicates included."),
    "n_predicted": Counter("predictions", "Predictions made and published."),
    "n_learned": Counter("learned", "Labelled events learned."),
    "n_duplicates": Counter(
        "duplicates", "Events skipped because their event_id was seen already."
    ),
    "n_dead_letters": Counter("dead_letters", "Malformed events sent to the dead-letter topic."),
    "n_missing_values": Counter("missing_values", "Feature values that were null or non-finite."),
    "n_pending_expired": Counter(
        "pending_expired", "Predictions that left the pending store unlabelled."
    ),
    "n_labels_unmatched": Counter("labels_unmatched", "Labels whose event never came."),
    "n_labels_duplicate": Counter(
        "labels_duplicate", "Second labels for an event already labelled."
    ),
    "n_labels_early": Counter("labels_early", "Labels that came before their event."),
    "n_drifts": Counter("drifts", "Drift detections on the error stream."),
    "n_model_errors": Counter("model_errors", "Events River raised on; the model was rewound."),
    "n_features_dropped": Counter("features_dropped", "New feature names past max_features."),
    "n_rerouted": Counter(
        "rerouted", "Events and labels that arrived on another partition and were moved here."
    ),
}
assert list(COUNTERS) == [f.name for f in fields(Counters)]  # one list, in one order
