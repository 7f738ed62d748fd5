"""A new SQLite MLflow store starts as a copy of MLflow's own empty schema, made once per MLflow
version on this machine.

MLflow makes a new store's tables by replaying every migration it ships, one to two seconds for
each new `runs_dir` (more on a busy machine). The copy is what MLflow itself made on an empty
database (`_initialize_tables`: the tables, then the migrations, nothing else); MLflow adds its
Default experiment when it opens the copy, as it would have. Where no copy can be made (MLflow
changed its internals, an unwritable cache), MLflow creates the store itself, as before.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

from colorize.cache_root import cache_root
from colorize.locks import exclusive
from experiments.stores.store_urls import sqlite_path

log = logging.getLogger("experiments")


def schema_dir() -> Path:
    """`$COLORIZE_CACHE/mlflow-schema`, default `~/.cache/colorize-studies/mlflow-schema`."""
    return cache_root() / "mlflow-schema"


def seed_new_store(tracking_uri: str) -> bool:
    """Where `tracking_uri` names a SQLite store not made yet, put a copy of the empty schema
    there; True when it did. Call it holding the store's lock (`store_lock`)."""
    path = _new_store_path(tracking_uri)
    if path is None:
        return False
    template = empty_schema()
    if template is None:
        return False
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        shutil.copyfile(template, part)
        # whole or not at all, and never over a store another process (one that opens stores
        # without the lock: the UI, a user's `mlflow ui`) has made meanwhile
        os.link(part, path)
    except OSError:
        return False
    finally:
        part.unlink(missing_ok=True)
    return True


def _new_store_path(tracking_uri: str) -> Path | None:
    """The file a new SQLite store would be made in, or None where a copy must not go: not
    SQLite, in memory, with options (`?timeout=`), a name already taken (a store, a link, an
    empty file), a journal or write-ahead log left beside it (SQLite would replay it into the
    copy), or no folder (MLflow says what is wrong)."""
    import sqlalchemy

    if sqlite_path(tracking_uri) is None:
        return None
    try:
        url = sqlalchemy.engine.make_url(tracking_uri)
    except sqlalchemy.exc.ArgumentError:
        return None
    if url.query or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database)
    beside = [path.with_name(path.name + suffix) for suffix in ("", "-journal", "-wal", "-shm")]
    if any(os.path.lexists(file) for file in beside) or not path.parent.is_dir():
        return None
    return path


def empty_schema() -> Path | None:
    """This MLflow version's empty schema, made the first time it is asked for (by MLflow's
    own table creation); None where it cannot be made or read."""
    try:
        import mlflow
        from mlflow.store.db.utils import _get_latest_schema_revision, _initialize_tables
    except ImportError:  # MLflow moved them: it makes each store itself
        return None
    folder = schema_dir()
    template = folder / f"mlflow-{mlflow.__version__}.db"
    try:
        revision = _get_latest_schema_revision()
        folder.mkdir(parents=True, exist_ok=True)
        with exclusive(folder / ".lock"):
            if template.exists() and _revision(template) != revision:
                # damaged, or made by a build of this version with other migrations
                log.warning("remaking the MLflow schema copy %s", template)
                template.unlink()
            if not template.exists():
                _make(template, _initialize_tables, revision)
    except Exception as error:  # the cache is only a shortcut: never fail a study for it
        log.debug("no MLflow schema copy in %s: %s", folder, error)
        return None
    return template


def _make(template: Path, initialize_tables, revision: str) -> None:
    import sqlalchemy

    part = template.with_name(f".{template.name}.{uuid.uuid4().hex}")
    try:
        engine = sqlalchemy.create_engine(f"sqlite:///{part}")
        try:
            initialize_tables(engine)
        finally:
            engine.dispose()
        if _revision(part) != revision:
            raise RuntimeError("the schema MLflow made does not read back")
        os.replace(part, template)
    finally:
        part.unlink(missing_ok=True)


def _revision(database: Path) -> str | None:
    """The MLflow migration a whole, readable SQLite database is at; None if it is not one."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            if connection.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return None
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return row[0] if row else None
