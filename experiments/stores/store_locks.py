"""A lock held in a store's own place, so that processes (and, on a database server, hosts) that
share the store take turns: a lock file beside a SQLite or journal file or inside a local folder
(an MLflow file store, a Keras Tuner project), an advisory lock on PostgreSQL, a named lock on
MySQL. An MLflow server has no lock of its own: whoever needs one there holds it in a store that
all hosts share (registration holds it in the study's Optuna storage, `Tracker.publishing`).

A lock that is `required` and cannot be taken (no lock in that kind of store, an unreachable
database, a folder that cannot be written) raises a one-line `UsageError` instead of letting the
work go on unlocked; one that is not required (a new store's tables, made by whoever opens it
next, who says in their own words why it cannot be opened) is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from experiments.common.errors import UsageError
from experiments.stores.store_urls import journal_path, sqlite_path

LOCKS = {  # dialect: (take, give back); session locks, held until given back or disconnected
    "postgresql": ("SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"),
    "mysql": ("SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"),
}


def _lock_file(url: str, name: str) -> Path | None:
    """The lock file of `name` for a store kept in local files, or None for any other store: a
    SQLite or journal file's lock lies beside it, a folder's (`file:` URI or plain path) in it."""
    path = sqlite_path(url) or journal_path(url)
    if path is not None:
        return path.with_name(f".{path.name}.{name}.lock")
    if url.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(url).path)) / f".{name}.lock"
    if url and "://" not in url:
        return Path(url).expanduser() / f".{name}.lock"
    return None


def _refused(url: str, name: str, why: str) -> UsageError:
    from experiments.common.redact import mask_secrets, masked_url

    return UsageError(f"cannot take the lock {name} in {masked_url(url)}: {mask_secrets(why)}")


@contextlib.contextmanager
def store_lock(url: str, name: str, engine=None, required: bool = False) -> Iterator[None]:
    """Hold the lock `name` of the store at `url` (a SQLAlchemy or Optuna URL, an MLflow file
    store, a folder); `engine`, a SQLAlchemy engine already open on it (an Optuna RDB
    storage's), saves opening another.

    Raises:
        UsageError: `required`, and the lock cannot be taken (see the module's docstring).
    """
    lock_file = _lock_file(url, name)
    if lock_file is not None:
        from colorize.locks import exclusive

        if not os.access(lock_file.parent, os.W_OK):
            if required:
                raise _refused(url, name, f"{lock_file.parent} is not a writable folder")
            yield  # no folder yet: whoever opens the store says so
            return
        with exclusive(lock_file):
            yield
        return
    import sqlalchemy

    try:
        dialect = sqlalchemy.engine.make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:  # not a database URL (an MLflow server)
        dialect = ""
    if dialect not in LOCKS:
        if required:
            raise _refused(url, name, "this kind of store has no lock")
        yield
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    values = {"key": key, "name": f"colorize-{key}"}
    take, give = (sqlalchemy.text(statement) for statement in LOCKS[dialect])
    own, connection = engine is None, None
    try:
        engine = engine if engine is not None else sqlalchemy.create_engine(url)
        connection = engine.connect()
        taken = connection.execute(take, values).scalar()
        connection.commit()
        if dialect == "mysql" and taken != 1:  # NULL: an error on the server
            raise RuntimeError(f"GET_LOCK returned {taken}")
    except Exception as error:  # unreachable, no driver, refused
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
        connection = None
        if required:
            if own and engine is not None:
                engine.dispose()
            cause = getattr(error, "orig", None) or error
            raise _refused(
                url, name, (str(cause).strip().splitlines() or ["?"])[0][:300]
            ) from None
    try:
        yield
    finally:
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.execute(give, values)
                connection.commit()
            connection.close()
        if own and engine is not None:
            engine.dispose()
