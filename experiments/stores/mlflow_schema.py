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
    there; True when it did. Call it holding the store's lock (`store_lock`): two processes
    must not both seed one file."""
    path = sqlite_path(tracking_uri)
    if path is None or path.exists() or not path.parent.is_dir():
        return False  # not SQLite, made already, or no folder: MLflow says what is wrong
    template = empty_schema()
    if template is None:
        return False
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        shutil.copyfile(template, part)
        os.replace(part, path)  # whole or not at all: a copy cut short is never the store
    except OSError:
        part.unlink(missing_ok=True)
        return False
    return True


def empty_schema() -> Path | None:
    """This MLflow version's empty schema, made the first time it is asked for (by MLflow's
    own table creation); None where it cannot be made or read."""
    try:
        import mlflow
        from mlflow.store.db.utils import _initialize_tables
    except ImportError:  # MLflow moved it: it makes each store itself
        return None
    folder = schema_dir()
    template = folder / f"mlflow-{mlflow.__version__}.db"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with exclusive(folder / ".lock"):
            if template.exists() and not _sound(template):
                log.warning("remaking the damaged MLflow schema copy %s", template)
                template.unlink()
            if not template.exists():
                _make(template, _initialize_tables)
    except Exception as error:  # the cache is only a shortcut: never fail a study for it
        log.debug("no MLflow schema copy in %s: %s", folder, error)
        return None
    return template


def _make(template: Path, initialize_tables) -> None:
    import sqlalchemy

    part = template.with_name(f".{template.name}.{uuid.uuid4().hex}")
    engine = sqlalchemy.create_engine(f"sqlite:///{part}")
    try:
        initialize_tables(engine)
    finally:
        engine.dispose()
    if not _sound(part):
        part.unlink(missing_ok=True)
        raise RuntimeError("the schema MLflow made does not read back")
    os.replace(part, template)


def _sound(database: Path) -> bool:
    """The file reads as a whole SQLite database holding MLflow's migration version."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
            if connection.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return False
            version = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    return version is not None
