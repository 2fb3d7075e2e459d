"""The id a KRaft cluster is formatted with."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable

#: Ids Kafka keeps for itself (``Uuid.ZERO_UUID`` and ``Uuid.METADATA_TOPIC_ID``).
_RESERVED_IDS = frozenset({uuid.UUID(int=0), uuid.UUID(int=1)})


def new_cluster_id(random_uuid: Callable[[], uuid.UUID] = uuid.uuid4) -> str:
    """A random KRaft cluster id, drawn the way Kafka's ``Uuid.randomUuid()`` draws one.

    Kafka writes a uuid as its 16 bytes in URL-safe base64 without padding: 22 characters
    from ``A-Z a-z 0-9 - _``. One id in 64 begins with ``-``, and ``kafka-storage format -t
    -xyz...`` then reads the id as an option ("argument --cluster-id/-t: expected one
    argument"). Kafka's own generator draws again in that case, and never hands out the
    reserved all-zero id or the metadata topic's id; so does this one.

    Parameters
    ----------
    random_uuid
        Where the random uuids come from; a test passes a scripted sequence.

    Returns
    -------
    str
        22 characters of URL-safe base64 that do not begin with ``-``.

    Examples
    --------
    The reserved zero id and an id that would read ``-AAAAAAAAAAAAAAAAAAAAA`` are drawn
    again:

    >>> import uuid
    >>> dash = uuid.UUID(bytes=b"\\xf8" + bytes(15))
    >>> draws = iter([uuid.UUID(int=0), dash, uuid.UUID(int=2)])
    >>> new_cluster_id(lambda: next(draws))
    'AAAAAAAAAAAAAAAAAAAAAg'
    """
    while True:
        drawn = random_uuid()
        cluster_id = base64.urlsafe_b64encode(drawn.bytes).decode().rstrip("=")
        if drawn not in _RESERVED_IDS and not cluster_id.startswith("-"):
            return cluster_id
