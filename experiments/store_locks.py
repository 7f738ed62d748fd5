"""A lock held in a store's own place, so that processes (and, on a database server, hosts) that
share the store take turns: a lock file beside a SQLite or journal file, an advisory lock on
PostgreSQL, a named lock on MySQL. Other stores (an MLflow server) get no lock."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

from experiments.store_urls import journal_path, sqlite_path

LOCKS = {  # dialect: (take, give back); session locks, held until given back or disconnected
    "postgresql": ("SELECT pg_advisory_lock(:key)", "SELECT pg_advisory_unlock(:key)"),
    "mysql": ("SELECT GET_LOCK(:name, -1)", "SELECT RELEASE_LOCK(:name)"),
}


@contextlib.contextmanager
def store_lock(url: str, name: str, engine=None) -> Iterator[None]:
    """Hold the lock `name` of the store at `url` (a SQLAlchemy or Optuna URL); `engine`, a
    SQLAlchemy engine already open on it (an Optuna RDB storage's), saves opening another."""
    path = sqlite_path(url) or journal_path(url)
    if path is not None:
        from colorize.locks import exclusive

        if not os.access(path.parent, os.W_OK):  # no folder yet: whoever opens it says so
            yield
            return
        with exclusive(path.with_name(f".{path.name}.{name}.lock")):
            yield
        return
    import sqlalchemy

    try:
        dialect = sqlalchemy.engine.make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:  # not a database URL (an MLflow server)
        dialect = ""
    if dialect not in LOCKS:
        yield
        return
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    values = {"key": key, "name": f"colorize-{key}"}
    take, give = (sqlalchemy.text(statement) for statement in LOCKS[dialect])
    own, connection = engine is None, None
    try:
        engine = engine if engine is not None else sqlalchemy.create_engine(url)
        connection = engine.connect()
        connection.execute(take, values)
        connection.commit()
    except Exception:  # unreachable, no driver: whoever opens the store next says so
        connection = None
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
