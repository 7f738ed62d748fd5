"""User mistakes, reported as one line on stderr with exit code 2, never as a traceback; a trial
that could not finish; and a fault the study cannot go on through (exit code 1)."""

from __future__ import annotations

import errno

STOPPED_EXIT = 1  # a fault no trial can survive (disk full, a store gone): the study stopped
USAGE_EXIT = 2
INTERRUPTED_EXIT = 130
INCOMPLETE_EXIT = 3  # trials still run elsewhere: the study is not finished

# Writes that fail for every trial alike: going on would only fail the rest of the study.
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


class UsageError(Exception):
    """A user mistake (bad key, value, path, URL); the message is the whole report."""


class TrialFailed(Exception):
    """The trial could not finish; the message says why.

    Attributes:
        retry: whether the next run of the study retries it with the same values (an
            unexpected error, e.g. a server error or a locked store), rather than a verdict on
            its values (an infeasible architecture, a diverging loss).
    """

    def __init__(self, reason: str, retry: bool = False):
        super().__init__(reason)
        self.retry = retry


class StudyStopped(Exception):
    """A fault the study cannot go on through (disk full, a store gone); the message names it.
    The trial it hit is failed and retried by the next run of the same command."""


def first_line(error: BaseException, limit: int = 300) -> str:
    """`Type: the first line of its message`, at most `limit` characters."""
    from experiments.common.redact import mask_secrets

    text = mask_secrets((str(error).strip().splitlines() or [""])[0])
    return (f"{type(error).__name__}: {text}" if text else type(error).__name__)[:limit]


def is_disk_full(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, is a write refused for lack of space
    (a full disk, a quota, a file size limit, a read-only file system)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        if "database or disk is full" in str(error):  # SQLite's own word for it
            return True
        error = error.__cause__ or error.__context__
    return False
