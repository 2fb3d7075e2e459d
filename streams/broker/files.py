"""Files the local broker keeps in its home, written so a crash never leaves half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, private: bool = False) -> None:
    """Replace ``path`` with ``data`` in one step; ``private`` files are mode 0600.

    The bytes go to a sibling first and are renamed over ``path``: a key or a password file
    cut short by a crash would otherwise look present and be reused. A private file is
    created 0600 before anything is written to it, so it is never readable by others, even
    for a moment.
    """
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(partial, path)
