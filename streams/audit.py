"""The audit trail: every call of an admin route, on the ``audit`` topic and in the log.

Each call is recorded once, by the node that answered it (a call relayed to a model's owner
is recorded by the owner, with the original client's address), whatever came of it: done,
failed, or refused for a wrong or missing token (with the fingerprint of what was presented),
since a refused call is what an audit is most for. Tokens never appear, only
:func:`fingerprint`; each entry is written to the ``audit`` topic with the node's Faust
producer (keyed by model, in order) and logged at INFO with the same fields (``audit`` in a
JSON line).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from streams.learning.records import AuditEntry

logger = logging.getLogger(__name__)


def fingerprint(token: str | None) -> str | None:
    """The first 16 hex digits of the SHA-256 of ``token``: enough to tell tokens apart (and
    to check which one was used, by whoever holds it), nothing to log in with.

    Examples
    --------
    >>> fingerprint("test")
    '9f86d081884c7d65'
    >>> fingerprint(None) is None
    True
    """
    if token is None:
        return None
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).hexdigest()[:16]


class AuditTrail:
    """Writes :class:`AuditEntry` records to ``topic`` (the Faust topic ``audit``) and logs
    them."""

    def __init__(self, topic: Any) -> None:
        self.topic = topic

    def record(self, entry: AuditEntry) -> None:
        """Log ``entry`` and hand it to the producer, without waiting for the broker: an
        admin call is not held up (nor a refused one made to wait) by the audit."""
        who = entry.who
        logger.info(
            "admin %s of model %r by %s from %s: %s (%d)",
            entry.action, entry.model,
            f"token {who.token_fingerprint}" if who.token_fingerprint else "no token",
            who.client, entry.result, entry.status,
            extra={"model": entry.model, "audit": entry.as_dict()},
        )  # fmt: skip
        self.topic.send_soon(key=entry.model.encode(), value=entry.encode())
