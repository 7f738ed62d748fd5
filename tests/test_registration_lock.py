"""Registration under a real race: two processes released together by a barrier register a
finished study's models, with the after-the-fact duplicate cleanup turned off in them, so only
the lock keeps each model to one version: on a database MLflow store and on a real `mlflow
server` (whose lock is held in the study's Optuna storage: SQLite, and PostgreSQL). The lock
itself is checked the same way on each kind of store, and a lock that cannot be taken is one
line."""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments.common.errors import UsageError
from experiments.stores.store_locks import store_lock
from tests.lock_holder import hold
from tests.servers import create_database, free_port, mlflow_server, postgres_server
from tests.studies_helpers import copy_stores

SPAWN = multiprocessing.get_context("spawn")  # a fresh interpreter: no TensorFlow state forked


def _rerun_at_once(barrier, argv: list[str]) -> None:
    """One of the two processes: the study command rerun on the finished study, held at a
    barrier just before taking the registration lock, with the cleanup that would delete a
    duplicate version made a no-op (so a duplicate stays, and the test sees it)."""
    from experiments import tracking
    from experiments.run import main

    publishing = tracking.Tracker.publishing

    def together(self, registered):
        barrier.wait(timeout=300)
        return publishing(self, registered)

    tracking.Tracker.publishing = together
    tracking.Tracker._keep_first_version = lambda self, registered, run_id, version, latest: (
        version
    )
    sys.exit(main(argv))


def _two_at_once(argv: list[str]) -> list[int]:
    barrier = SPAWN.Barrier(2)
    processes = [SPAWN.Process(target=_rerun_at_once, args=(barrier, argv)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=600)
    return [process.exitcode for process in processes]


def _unregistered_copy(smoke_optimizers_study, tmp_path: Path) -> Path:
    """A copy of the finished smoke study with its registered model removed: rerunning the
    command registers every model again."""
    runs_dir = copy_stores(smoke_optimizers_study[0], tmp_path / "runs")
    for lock in runs_dir.glob(".*.lock"):  # the first registration's: the test looks for its own
        lock.unlink()
    MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}").delete_registered_model("optimizers")
    return runs_dir


def check_one_version_per_model(tracking_uri: str) -> None:
    client = MlflowClient(tracking_uri)
    versions = client.search_model_versions("name = 'optimizers'")
    by_run = sorted(v.run_id for v in versions)
    # the smoke study's three trials are each the best of its optimizer: three models, once each
    assert len(by_run) == len(set(by_run)) == 3, by_run
    assert sorted(int(v.version) for v in versions) == [1, 2, 3]
    champion = client.get_model_version_by_alias("optimizers", "champion")
    assert int(champion.version) == 3  # registered last, so `latest` is the champion


ARGS = ["study=optimizers", "profile=smoke", "trainer.run_eagerly=false"]


def test_two_processes_registering_at_once_on_a_database_store_make_one_version_each(
    tmp_path, smoke_optimizers_study
):
    runs_dir = _unregistered_copy(smoke_optimizers_study, tmp_path)
    assert _two_at_once([*ARGS, f"runs_dir={runs_dir}"]) == [0, 0]
    check_one_version_per_model(f"sqlite:///{runs_dir / 'mlflow.db'}")
    assert list(runs_dir.glob(".*publish*.lock")) == [
        runs_dir / ".mlflow.db.publish.optimizers.lock"  # held beside the MLflow store
    ]


@pytest.mark.parametrize("storage_kind", ["sqlite", "postgresql"])
def test_two_processes_registering_at_once_on_an_mlflow_server_make_one_version_each(
    tmp_path, smoke_optimizers_study, storage_kind
):
    """The MLflow server has no lock: the processes take turns on the study's Optuna
    storage, a lock file beside SQLite or an advisory lock on PostgreSQL."""
    runs_dir = _unregistered_copy(smoke_optimizers_study, tmp_path)
    (tmp_path / "artifacts").mkdir()
    local = f"sqlite:///{runs_dir / 'optuna.db'}"
    with mlflow_server(f"sqlite:///{runs_dir / 'mlflow.db'}", tmp_path / "artifacts") as uri:
        argv = [*ARGS, f"runs_dir={runs_dir}", f"tracking_uri={uri}"]
        if storage_kind == "sqlite":
            assert _two_at_once(argv) == [0, 0]
        else:
            with postgres_server() as (host, port, user):
                storage = create_database(host, port, user, "optuna")
                optuna.copy_study(
                    from_study_name="optimizers", from_storage=local, to_storage=storage
                )
                assert _two_at_once([*argv, f"storage={storage}"]) == [0, 0]
        check_one_version_per_model(uri)
    held_here = list(runs_dir.glob(".*publish*.lock"))  # SQLite's lock file; none: PostgreSQL's
    assert held_here == (
        [runs_dir / ".optuna.db.publish.optimizers.lock"] if storage_kind == "sqlite" else []
    )


def _held_in_turn(url: str) -> list[tuple[float, float]]:
    barrier, times = SPAWN.Barrier(2), SPAWN.Queue()
    processes = [SPAWN.Process(target=hold, args=(barrier, url, times)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0, 0]
    return sorted(times.get(timeout=10) for _ in processes)  # two small items: no flush waits


@pytest.mark.parametrize("kind", ["sqlite", "journal", "folder", "postgresql"])
def test_the_store_lock_makes_two_processes_take_turns(tmp_path, kind):
    """Two processes released together hold the lock one after the other, never together."""
    if kind == "postgresql":
        with postgres_server() as (host, port, user):
            (first, second) = _held_in_turn(create_database(host, port, user, "locks"))
    else:
        url = {
            "sqlite": f"sqlite:///{tmp_path / 'optuna.db'}",
            "journal": f"journal:{tmp_path / 'journal.log'}",
            "folder": str(tmp_path),
        }[kind]
        (first, second) = _held_in_turn(url)
    assert second[0] >= first[1]  # the second took it only once the first gave it back


def test_a_lock_that_cannot_be_taken_stops_in_one_line():
    """An MLflow server has no lock, and a database that does not answer gives none: the
    work that needs the lock stops with one line naming it (the password masked)."""
    with (
        pytest.raises(UsageError) as server,
        store_lock("http://127.0.0.1:1", "publish.m", required=True),
    ):
        pass
    assert str(server.value) == (
        "cannot take the lock publish.m in http://127.0.0.1:1: this kind of store has no lock"
    )
    url = f"postgresql+psycopg2://me:hunter22@127.0.0.1:{free_port()}/optuna"
    with pytest.raises(UsageError) as database, store_lock(url, "publish.m", required=True):
        pass
    message = str(database.value)
    assert message.startswith("cannot take the lock publish.m in postgresql+psycopg2://me:")
    assert "hunter22" not in message and "\n" not in message
    assert "refused" in message.lower()
    with store_lock("http://127.0.0.1:1", "mlflow-store"):  # not required: skipped
        pass


def test_registration_on_a_server_is_locked_in_the_study_storage(tmp_path):
    """Where the MLflow store is a server, registration holds its lock in the study's Optuna
    storage; without a storage that has a lock, it stops in one line instead of going on."""
    from experiments.tracking import Tracker

    tracker = Tracker.__new__(Tracker)  # no server needed to choose where the lock is
    tracker.tracking_uri = "http://127.0.0.1:1"
    tracker.location = f"sqlite:///{tmp_path / 'optuna.db'}"
    with tracker.publishing("optimizers"):
        assert (tmp_path / ".optuna.db.publish.optimizers.lock").is_file()
    tracker.location = "http://127.0.0.1:2"
    with pytest.raises(UsageError, match="has no lock"), tracker.publishing("optimizers"):
        pass
