"""Every error streamlearn raises on purpose, in one tree.

Each class names a failure category and mixes in the nearest builtin. None of them knows how
an adapter reports it: the HTTP status of each lives in :mod:`app.errors`, and the worker's
command line prints the sentence of any of them on one line.
"""

from __future__ import annotations


class StreamlearnError(Exception):
    """Base class of every error streamlearn raises on purpose."""


class SpecError(StreamlearnError, ValueError):
    """A model spec (TOML table or pipeline expression) is invalid."""


class InvalidSpec(SpecError):
    """A spec sent to the registry is invalid: ``field`` names the setting at fault (dotted,
    ``challengers.tree``), or is ``None`` when the spec as a whole is."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidEvent(StreamlearnError, ValueError):
    """An event or label message breaks the wire contract, or carries a value its model
    cannot take.

    ``field`` names the offending field (``event_id``, ``features.age``, ...) or ``None``
    when the message as a whole is unreadable.
    """

    def __init__(self, message: str, field: str | None = None, model: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        #: The model the event names, when it got far enough to name one.
        self.model = model


class UnknownModel(StreamlearnError, LookupError):
    """No model of that name is declared."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown model {name!r}")
        self.name = name


class UnknownCandidate(StreamlearnError, LookupError):
    """The model has no challenger of that name."""

    def __init__(self, model: str, name: str) -> None:
        super().__init__(f"model {model!r} has no challenger {name!r}")


class ModelUnavailable(StreamlearnError, LookupError):
    """The model is declared, but nothing can answer for it right now (it is moving between
    nodes, say); asking again in a moment will do."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"model {name!r} {reason}; retry in a moment")
        self.name = name


class SnapshotRefused(StreamlearnError, ValueError):
    """A snapshot failed its signature or carried a forbidden class; nothing of it ran."""


class SnapshotNotFound(StreamlearnError, LookupError):
    """No snapshot of that model and version."""


class SourceError(StreamlearnError, ValueError):
    """A replay source cannot be read."""


class BrokerError(StreamlearnError, RuntimeError):
    """The local broker cannot be set up, started or stopped."""


class TopicMismatch(StreamlearnError, RuntimeError):
    """An existing topic keyed by model (events, labels, snapshots) does not have the
    partition count this node expects."""


class BrokerUnreachable(StreamlearnError, ConnectionError):
    """No Kafka broker answered at the bootstrap servers within the connect timeout."""


class BrokerRefused(StreamlearnError, ConnectionError):
    """A broker answered, but not to these security settings: waiting will not help.

    Subclasses name the cause; the message names the setting to fix, never a secret.
    """


class AuthenticationFailed(BrokerRefused):
    """The broker rejected the SASL username or password."""


class MechanismUnsupported(BrokerRefused):
    """The broker does not enable the configured SASL mechanism."""


class CertificateRejected(BrokerRefused):
    """A TLS certificate was refused: the broker's (untrusted, or issued for another host)
    by this client, or this client's (missing or untrusted) by the broker."""


class ProtocolMismatch(BrokerRefused):
    """The broker's listener speaks another security protocol (TLS or not, SASL or not)."""


class TlsFilesUnusable(StreamlearnError, ValueError):
    """The CA, certificate or key file named in the settings exists but cannot be loaded."""


class TopicAccessDenied(StreamlearnError, PermissionError):
    """The broker's ACLs do not let this Kafka user create, read or write a topic (or use
    its consumer group) that the process needs."""


class TopicCreationFailed(StreamlearnError, RuntimeError):
    """The broker refused to create a contract topic for a reason other than ACLs (a
    replication factor it cannot meet, a creation policy)."""


class InvalidSpace(SpecError):
    """A tuning request's search space is invalid: ``field`` names the part at fault, dotted
    and relative to the request body (``space.LogisticRegression.l2.low``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownJob(StreamlearnError, LookupError):
    """No tuning job of that id for that model."""

    def __init__(self, model: str, job: str) -> None:
        super().__init__(f"model {model!r} has no tuning job {job!r}")


class JobConflict(StreamlearnError, RuntimeError):
    """A model already has a tuning job running: one at a time per model."""

    def __init__(self, model: str, job: str) -> None:
        super().__init__(
            f"model {model!r} is being tuned already (job {job!r}); stop it with DELETE"
            f" /models/{model}/tune/{job} or wait for it to end"
        )
        self.job = job


class NodeBusy(StreamlearnError, RuntimeError):
    """The node runs as many tuning jobs as it may already."""

    def __init__(self, model: str, running: list[str]) -> None:
        super().__init__(
            f"model {model!r} cannot be tuned now: this node runs {len(running)} tuning jobs"
            f" already ({', '.join(running)}), its most at once; wait for one to end or stop"
            " one with DELETE"
        )
