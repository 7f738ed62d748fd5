"""An exclusive lock across processes on one machine, held on a lock file (POSIX `flock`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if missing); where `fcntl` is missing
    (not POSIX) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def hold(lock_path: Path):
    """Take an exclusive lock on `lock_path` without waiting, for as long as the returned open
    file is kept (the process's end frees it, however it ends); None when another process
    holds it. Where `fcntl` is missing, nothing is locked and a handle is still returned."""
    handle = open(lock_path, "a+")  # noqa: SIM115  (kept open: it is the lock)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle
