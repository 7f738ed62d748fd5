"""A new SQLite MLflow store seeded with MLflow's empty schema (`experiments.stores.mlflow_schema`)
is the store MLflow would have made: same tables, indexes and migration version, its Default
experiment where the store is; a damaged or unmakeable copy never reaches a study."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from experiments.stores.mlflow_schema import empty_schema, schema_dir, seed_new_store


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("COLORIZE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def schema(database: Path) -> tuple[set, str]:
    """The store's tables and indexes, each with the clauses of its SQL (in any order: MLflow's
    migrations write a table's constraints in an order that differs from run to run), and its
    migration version."""
    with closing(sqlite3.connect(database)) as connection:
        objects = {
            (kind, name, frozenset((sql or "").split(", \n")))
            for kind, name, sql in connection.execute("SELECT type, name, sql FROM sqlite_master")
        }
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return objects, version


def test_a_seeded_store_is_the_one_mlflow_makes(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root: ./mlruns
    made, seeded = tmp_path / "made", tmp_path / "seeded"
    made.mkdir(), seeded.mkdir()
    (made_default,) = MlflowClient(f"sqlite:///{made / 'mlflow.db'}").search_experiments()
    assert seed_new_store(f"sqlite:///{seeded / 'mlflow.db'}")
    assert schema(seeded / "mlflow.db") == schema(made / "mlflow.db")
    client = MlflowClient(f"sqlite:///{seeded / 'mlflow.db'}")
    (default,) = client.search_experiments()
    assert default.name == "Default"
    # made as it is opened, as MLflow's own: nothing of where the schema was made
    assert default.artifact_location == made_default.artifact_location
    assert default.creation_time >= made_default.creation_time
    run = client.create_run(client.create_experiment("study")).info.run_id
    client.log_metric(run, "val_loss", 0.5)
    assert client.get_run(run).data.metrics == {"val_loss": 0.5}
    assert list(schema_dir().glob("mlflow-*.db")) == [empty_schema()]  # one copy, kept


def test_a_made_store_or_another_kind_of_store_is_left_alone(cache, tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"the user's own")
    assert not seed_new_store(f"sqlite:///{store}")
    assert store.read_bytes() == b"the user's own"
    assert not seed_new_store("postgresql://user@localhost/mlflow")
    assert not seed_new_store(f"sqlite:///{tmp_path / 'no-folder' / 'mlflow.db'}")
    assert not (tmp_path / "no-folder").exists()


@pytest.mark.parametrize("left", ["mlflow.db-journal", "mlflow.db-wal", "mlflow.db-shm"])
def test_no_copy_beside_a_journal_sqlite_would_replay_into_it(cache, tmp_path, left):
    """A killed writer's journal, its store moved aside: SQLite would roll the old store's
    pages into a copy (its experiments and all); an empty file, as MLflow makes, ignores it."""
    (tmp_path / left).write_bytes(b"pages of a store moved away")
    assert not seed_new_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()


def test_no_copy_in_memory_with_options_or_over_a_link(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not seed_new_store("sqlite:///:memory:")
    assert not seed_new_store(f"sqlite:///{tmp_path / 'mlflow.db'}?timeout=30")
    link = tmp_path / "mlflow.db"
    link.symlink_to(tmp_path / "elsewhere.db")  # a store to be made at the link's target
    assert not seed_new_store(f"sqlite:///{link}")
    # no file named ":memory:" or "mlflow.db?timeout=30", the link left a link
    assert link.is_symlink() and [p.name for p in tmp_path.iterdir()] == ["mlflow.db"]


def test_a_store_made_meanwhile_by_another_process_is_kept(cache, tmp_path, monkeypatch):
    """The UI or a user's `mlflow ui` open stores without the lock: one made between the check
    and the copy is never replaced, and no part of the copy is left beside it."""
    import shutil

    from experiments.stores import mlflow_schema

    store = tmp_path / "mlflow.db"
    copy = shutil.copyfile

    def copy_then_another_makes_it(source, target):
        copy(source, target)
        store.write_bytes(b"made by another process")

    monkeypatch.setattr(mlflow_schema.shutil, "copyfile", copy_then_another_makes_it)
    assert not seed_new_store(f"sqlite:///{store}")
    assert store.read_bytes() == b"made by another process"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_copy_of_other_migrations_is_made_again(cache, tmp_path):
    """A copy made by a build of this MLflow version with other migrations: MLflow would refuse
    a store made from it, so it is made again."""
    template = empty_schema()
    with closing(sqlite3.connect(template)) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'another'")
        connection.commit()
    assert seed_new_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert schema(tmp_path / "mlflow.db")[1] != "another"
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()


def test_a_damaged_copy_is_made_again_with_a_warning(cache, tmp_path, caplog):
    template = empty_schema()
    data = bytearray(template.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = bytes(4096)  # a page zeroed, as bad storage
    template.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="experiments"):
        assert seed_new_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert "remaking the MLflow schema copy" in caplog.text
    assert schema(tmp_path / "mlflow.db")[1]  # a sound store
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()


def test_without_a_cache_mlflow_makes_the_store_itself(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("COLORIZE_CACHE", str(blocked))
    assert empty_schema() is None
    assert not seed_new_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert not (tmp_path / "mlflow.db").exists()
