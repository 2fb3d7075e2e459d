"""Signed, atomically written snapshots, restored only through a restricted unpickler.

A snapshot file is ``MAGIC | HMAC-SHA256 (32 bytes) | header length (4 bytes) | header JSON |
pickle``. The MAC covers everything after it, and is checked before a single byte is
unpickled; the unpickler then allows River, NumPy, SciPy, streamlearn's own learning classes
and a short list of standard-library types, and refuses anything else by name.

Examples
--------
>>> import tempfile
>>> store = SnapshotStore(Path(tempfile.mkdtemp()), key=b"k" * 32, retention=2)
>>> info = store.write("m", {"weights": [1.0, 2.0]}, offsets={"events:0": 5})
>>> info.version, store.read("m", 1) == ({"weights": [1.0, 2.0]}, info)
(1, True)
>>> SnapshotStore(store.directory, key=b"x" * 32, retention=2).read("m", 1)
Traceback (most recent call last):
...
streams.learning.errors.SnapshotRefused: snapshot m v1: the signature does not match ...
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import io
import logging
import os
import pickle
import re
import secrets
import signal
import struct
import tempfile
import threading
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import orjson

from streams.learning.errors import SnapshotNotFound, SnapshotRefused

MAGIC = b"STREAMLEARN-SNAPSHOT-1\n"
_MAC_SIZE = 32
_FILE = re.compile(r"^v(\d{8})\.snapshot$")

#: Packages whose classes may be unpickled: River's models and streamlearn's learning state.
CLASS_PREFIXES = ("river.", "sortedcontainers.", "streams.learning.")
#: River stores some of its own functions in models (distance functions, static helpers);
#: those may be unpickled too, except from the parts of River that touch files or the network.
FUNCTION_PREFIXES = ("river.",)
FORBIDDEN_PREFIXES = (
    "river.datasets",
    "river.stream",
    "river.api",
    "river.compat",
    "river.evaluate",
)
#: Exact standard-library names that may be unpickled; nothing here can run code.
ALLOWED_NAMES = frozenset(
    {
        ("builtins", n)
        for n in ("dict", "list", "set", "frozenset", "tuple", "int", "float", "complex",
                  "bool", "str", "bytes", "bytearray", "slice", "range", "object")
    }
    | {
        ("collections", "OrderedDict"), ("collections", "deque"), ("collections", "defaultdict"),
        ("collections", "Counter"), ("copyreg", "_reconstructor"), ("copyreg", "__newobj__"),
        ("datetime", "datetime"), ("datetime", "timedelta"), ("datetime", "timezone"),
        ("datetime", "date"), ("random", "Random"), ("_codecs", "encode"),
        ("functools", "partial"), ("operator", "itemgetter"),
    }
    | {
        (module, name)
        for module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("ndarray", "dtype", "_reconstruct", "scalar")
    }
    | {("numpy.random._pickle", n)
       for n in ("__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor")}
    | {("numpy.random", "RandomState"), ("numpy.random._mt19937", "MT19937"),
       ("numpy.random._pcg64", "PCG64"), ("numpy.random._generator", "Generator")}
)  # fmt: skip

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What a snapshot is, without unpickling it."""

    model: str
    version: int
    created_at: str
    offsets: dict[str, int]
    bytes: int

    def public(self) -> dict[str, Any]:
        return {"version": self.version, "created_at": self.created_at,
                "offsets": self.offsets, "bytes": self.bytes}  # fmt: skip


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only allowed classes; ``__reduce__`` payloads naming anything else fail."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_NAMES:
            return super().find_class(module, name)
        if (
            not name.startswith("__")
            and module.startswith(CLASS_PREFIXES)
            and not module.startswith(FORBIDDEN_PREFIXES)
        ):
            found = super().find_class(module, name)
            if isinstance(found, type) or (
                module.startswith(FUNCTION_PREFIXES) and callable(found)
            ):
                return found
        raise SnapshotRefused(f"forbidden class {module}.{name} in snapshot; nothing was run")


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` through :class:`RestrictedUnpickler`."""
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except SnapshotRefused:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError) as exc:
        raise SnapshotRefused(f"snapshot payload is not readable: {exc}") from None


def seal(key: bytes, model: str, version: int, state: Any, offsets: dict[str, int]) -> bytes:
    """The signed bytes of a snapshot."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    header = orjson.dumps(
        {"model": model, "version": version, "offsets": offsets,
         "created_at": datetime.now(tz=UTC).isoformat()}
    )  # fmt: skip
    body = struct.pack(">I", len(header)) + header + payload
    return MAGIC + hmac.new(key, body, hashlib.sha256).digest() + body


def open_sealed(key: bytes, data: bytes, label: str) -> tuple[dict[str, Any], bytes]:
    """Check the signature of sealed bytes; the header and the (still pickled) payload."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _MAC_SIZE + 4:
        raise SnapshotRefused(f"{label}: not a streamlearn snapshot")
    mac = data[len(MAGIC) : len(MAGIC) + _MAC_SIZE]
    body = data[len(MAGIC) + _MAC_SIZE :]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()):
        raise SnapshotRefused(
            f"{label}: the signature does not match (tampered, or signed with another key);"
            " refused before unpickling"
        )
    (size,) = struct.unpack(">I", body[:4])
    return orjson.loads(body[4 : 4 + size]), body[4 + size :]


class SnapshotStore:
    """Snapshots of each model under ``directory/<model>/v<version>.snapshot``."""

    def __init__(self, directory: Path, key: bytes, retention: int) -> None:
        self.directory = directory
        self.key = key
        self.retention = retention

    def write(self, model: str, state: Any, offsets: dict[str, int]) -> SnapshotInfo:
        """Seal and write the next version atomically; prune past ``retention``."""
        version = self.next_version(model)
        self._write(model, version, seal(self.key, model, version, state, offsets))
        return self.info(model, version)

    def write_forked(self, model: str, state: Any, offsets: dict[str, int]) -> ForkedWrite:
        """:meth:`write`, by a child process: returns at once, the child seals and writes.

        The child has the memory of this process as it is at the fork, so the snapshot is
        ``state`` as it is now, whatever this process changes next: a consistent copy for
        the price of a fork, and the pickling, signing and fsync off this process's loop.
        One at a time (versions are numbered when the child starts): wait for the last one
        before starting another or calling :meth:`write`.
        """
        version = self.next_version(model)
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:  # no room for a child (a strict memory overcommit): write here
            logger.warning("snapshot %s v%d written in the node itself: fork failed (%s)",
                           model, version, exc)  # fmt: skip
            self._write(model, version, seal(self.key, model, version, state, offsets))
            return ForkedWrite(self, model, version, pid=None)
        if pid == 0:
            _write_and_exit(self, model, version, state, offsets, parent)
        return ForkedWrite(self, model, version, pid)

    def next_version(self, model: str) -> int:
        versions = self.versions(model)
        return (versions[-1] + 1) if versions else 1

    def _write(self, model: str, version: int, data: bytes) -> None:
        folder = self.directory / model
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"v{version:08d}.snapshot"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(folder)
        versions = self.versions(model)
        for old in versions[: max(0, len(versions) - self.retention)]:
            (folder / f"v{old:08d}.snapshot").unlink(missing_ok=True)

    def versions(self, model: str) -> list[int]:
        """Versions on disk, oldest first (half-written files never count)."""
        folder = self.directory / model
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _FILE.match(p.name)))

    def info(self, model: str, version: int) -> SnapshotInfo:
        """Time, offsets and size of one version, read from its header."""
        path = self._path(model, version)
        with path.open("rb") as handle:
            head = handle.read(len(MAGIC) + _MAC_SIZE + 4)
            (size,) = struct.unpack(">I", head[-4:])
            header = orjson.loads(handle.read(size))
        return SnapshotInfo(
            model, version, header["created_at"], header["offsets"], path.stat().st_size
        )

    def read(self, model: str, version: int | None = None) -> tuple[Any, SnapshotInfo]:
        """Verify and unpickle a version (the latest by default)."""
        if version is None:
            versions = self.versions(model)
            if not versions:
                raise SnapshotNotFound(f"no snapshot of model {model!r}")
            version = versions[-1]
        path = self._path(model, version)
        label = f"snapshot {model} v{version}"
        header, payload = open_sealed(self.key, path.read_bytes(), label)
        if header.get("model") != model or header.get("version") != version:
            raise SnapshotRefused(
                f"{label}: the file holds {header.get('model')} v{header.get('version')}"
            )
        return restricted_loads(payload), self.info(model, version)

    def _path(self, model: str, version: int) -> Path:
        path = self.directory / model / f"v{version:08d}.snapshot"
        if not path.is_file():
            raise SnapshotNotFound(f"no snapshot v{version} of model {model!r}")
        return path


class ForkedWrite:
    """A snapshot being written by a child process (:meth:`SnapshotStore.write_forked`)."""

    def __init__(self, store: SnapshotStore, model: str, version: int, pid: int | None) -> None:
        self.store = store
        self.model = model
        self.version = version
        #: The child's; None when the snapshot was written without one (already done).
        self.pid = pid
        self._exit_code: int | None = None if pid is not None else 0
        self._reaping = threading.Lock()

    @property
    def done(self) -> bool:
        return self._exit_code is not None

    def wait(self) -> SnapshotInfo:
        """Block until the child has exited; what it wrote. Raises :class:`OSError` if it
        wrote nothing. Any thread may call it, any number of times."""
        with self._reaping:
            if self._exit_code is None:
                assert self.pid is not None  # an exit code is set when there is no child
                try:
                    self._exit_code = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
                except ChildProcessError:  # reaped by someone else: the file tells
                    written = self.version in self.store.versions(self.model)
                    self._exit_code = 0 if written else 1
        if self._exit_code != 0:
            raise OSError(
                f"the process writing snapshot {self.model} v{self.version} failed"
                f" (exit code {self._exit_code}; its traceback is in the log)"
            )
        return self.store.info(self.model, self.version)


def _write_and_exit(
    store: SnapshotStore, model: str, version: int, state: Any, offsets: dict[str, int],
    parent: int,
) -> NoReturn:  # fmt: skip
    """The child of :meth:`SnapshotStore.write_forked`: write, then exit at once (no cleanup
    of the parent's resources, which it shares: sockets, the event loop, buffered files)."""
    code = 1
    try:
        # Signals are the parent's business (its handlers would write to its loop's wakeup
        # fd); the child dies with the parent, as a write inside the parent would have.
        if threading.current_thread() is threading.main_thread():
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_DFL)
        die_with(parent)
        store._write(model, version, seal(store.key, model, version, state, offsets))
        code = 0
    except BaseException:  # reported by the exit code; the traceback goes to the log
        os.write(2, traceback.format_exc().encode(errors="replace"))
    finally:
        os._exit(code)


def die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` dies (Linux); exit if it already
    has."""
    try:
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the write may outlive the parent
        pass
    if os.getppid() != parent:
        os._exit(1)


def load_key(configured: str | None, state_dir: Path) -> bytes:
    """The HMAC key: ``configured`` (``STREAMLEARN_SNAPSHOT_KEY``) when given, else a random
    one generated once in ``<state_dir>/snapshot.key`` (mode 0600) and read from there since.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> load_key("s3cret", folder), (folder / "snapshot.key").exists()
    (b's3cret', False)
    >>> key = load_key(None, folder)
    >>> len(key), load_key(None, folder) == key, oct((folder / "snapshot.key").stat().st_mode)
    (64, True, '0o100600')
    """
    if configured is not None:
        return configured.encode()
    path = state_dir / "snapshot.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
