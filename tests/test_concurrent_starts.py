"""Two commands starting one study at the same moment: one MLflow study run, the grid queued
once, every point run once, each model registered once; and what each piece does when the
other process wins a race, made to happen on purpose on real stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from experiments.stores.liveness import HOST_NAME_ENV
from tests.servers import create_database, postgres_server
from tests.studies_helpers import copy_stores, run_cli

ARGS = ["study=optimizers", "profile=smoke", "heartbeat=2"]
OPTIMIZERS = ["adam", "adamax", "rmsprop"]


def check_one_of_each(storage: str, runs_dir: Path) -> None:
    trials = optuna.load_study(study_name="optimizers", storage=storage).get_trials()
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    queued = [  # the grid queued once (a retry of a reclaimed trial names its original)
        t
        for t in trials
        if "fixed_params" in t.system_attrs and "failed_trial" not in t.system_attrs
    ]
    assert sorted(t.system_attrs["fixed_params"]["optimizer"] for t in queued) == OPTIMIZERS
    # a worker that asks just as the other takes the last point gets a surplus trial: it is
    # marked, holds no values and trains nothing (the MLflow runs below are one a point)
    assert all(not t.params for t in trials if t.user_attrs.get("surplus"))
    complete = sorted(t.params["optimizer"] for t in trials if t.state.name == "COMPLETE")
    assert complete == OPTIMIZERS
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "optimizers"]
    runs = client.search_runs([experiment.experiment_id])
    assert {run.info.status for run in runs} == {"FINISHED"}
    (parent,) = [r for r in runs if r.data.tags["colorize.role"] == "study"]
    children = [r for r in runs if r.data.tags["colorize.role"] == "trial"]
    assert sorted(r.data.params["optimizer"] for r in children) == OPTIMIZERS
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    versions = client.search_model_versions("name = 'optimizers'")
    by_run = [v.run_id for v in versions]
    assert len(by_run) == len(set(by_run)) == len(OPTIMIZERS), by_run  # each best model once
    champion = client.get_model_version_by_alias("optimizers", "champion")
    assert int(champion.version) == max(int(v.version) for v in versions)  # and it is latest


def test_two_hosts_starting_one_study_at_once_share_it_on_postgresql(tmp_path):
    """Two commands, each posing as its own host, started together on one PostgreSQL storage
    and one runs folder: both end well, and the stores hold one of everything."""
    runs_dir = tmp_path / "runs"
    with postgres_server() as (host, port, user):
        storage = create_database(host, port, user, "optuna")
        command = [sys.executable, "-m", "experiments.run", *ARGS, f"runs_dir={runs_dir}",
                   f"storage={storage}"]  # fmt: skip
        processes = [
            subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, HOST_NAME_ENV: name},
            )  # fmt: skip
            for name in ("host-a", "host-b")
        ]
        outputs = [process.communicate(timeout=600)[0] for process in processes]
        for process, out in zip(processes, outputs, strict=True):
            assert process.returncode == 0, out[-3000:]
            assert "Traceback" not in out
        check_one_of_each(storage, runs_dir)


def test_a_grid_cut_short_while_queueing_is_completed_once(tmp_path):
    """A process killed while it queues the grid's points (held mid-way by a lock on the
    SQLite file, then `kill -9`): the grid is not marked queued, and the next opening queues
    only the points missing, once."""
    import signal
    import sqlite3
    import time

    from tests.test_reliability import create_study

    args = ["study=architecture", "profile=smoke", f"runs_dir={tmp_path}"]
    db = tmp_path / "optuna.db"
    code = f"from tests.test_reliability import create_study; create_study({args!r})"
    child = subprocess.Popen([sys.executable, "-c", code])

    def queued() -> int:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as connection:
                return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        except sqlite3.Error:  # not created yet, or busy
            return 0

    deadline = time.monotonic() + 120
    while queued() == 0:
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.001)
    lock = sqlite3.connect(db, timeout=60, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # the child waits at its next point
    cut = lock.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    lock.execute("ROLLBACK")
    lock.close()
    assert 0 < cut < 12, cut  # killed between the points
    storage = f"sqlite:///{db}"
    assert (
        "grid_enqueued"
        not in optuna.load_study(study_name="architecture", storage=storage).user_attrs
    )
    for _ in range(2):
        create_study(args)
    study = optuna.load_study(study_name="architecture", storage=storage)
    points = [t.system_attrs["fixed_params"] for t in study.get_trials()]
    assert len(points) == 12 and len({tuple(sorted(p.items())) for p in points}) == 12
    assert study.user_attrs["grid_enqueued"] is True


def test_a_study_run_made_twice_at_once_is_kept_once(tmp_path):
    """Another process creates the study's MLflow run in the very instant this one does: the
    one that made the younger run deletes it and joins the older."""
    from experiments.tracking import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    made_by_other = []

    class RacedTracker(Tracker):
        def _create_study_run(self, *args):
            other = Tracker(uri, "optimizers", tmp_path, "optuna")  # a moment earlier
            made_by_other.append(Tracker._create_study_run(other, *args))
            return super()._create_study_run(*args)

    tracker = RacedTracker(uri, "optimizers", tmp_path, "optuna")
    joined = tracker.start_study_run("storage", "optimizers", "fingerprint")
    client = MlflowClient(uri)
    (experiment,) = [e for e in client.search_experiments() if e.name == "optimizers"]
    live = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in live] == made_by_other == [joined]
    deleted = client.search_runs([experiment.experiment_id], run_view_type=2)  # deleted only
    assert len(deleted) == 1 and deleted[0].info.run_id != joined


def test_a_model_registered_twice_at_once_keeps_one_version(tmp_path, smoke_optimizers_study):
    """Two processes finishing the study together register the same trial's model: the later
    version is deleted. A trial registered again on purpose, to be the newest, keeps both."""
    from experiments.tracking import Tracker

    runs_dir = copy_stores(smoke_optimizers_study[0], tmp_path / "runs")
    uri = f"sqlite:///{runs_dir / 'mlflow.db'}"
    tracker = Tracker(uri, "optimizers", runs_dir, "optuna")
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("optimizers", "champion")
    other = min(
        (v for v in client.search_model_versions("name='optimizers'")),
        key=lambda v: int(v.version),
    )  # not the newest: registering it as the newest makes a second version on purpose
    assert other.version != champion.version
    model = next((runs_dir / "models" / "optimizers" / "optuna").glob("trial-*.keras"))
    before = {v.version for v in client.search_model_versions("name='optimizers'")}

    kept = tracker.register_model(other.run_id, model, "optimizers")  # the second process's
    assert int(kept) == int(other.version)
    assert {v.version for v in client.search_model_versions("name='optimizers'")} == before

    newest = tracker.register_model(other.run_id, model, "optimizers", latest=True)
    again = tracker.register_model(other.run_id, model, "optimizers", latest=True)
    assert again == newest and int(newest) > max(map(int, before))
    versions = client.search_model_versions(f"name='optimizers' and run_id='{other.run_id}'")
    assert sorted(int(v.version) for v in versions) == sorted([int(other.version), int(newest)])


def test_keras_tuner_recovery_closes_only_runs_of_processes_that_are_gone(tmp_path):
    """At its start a Keras Tuner study closes the trial runs a killed run left open; a run
    whose process still lives on this host is left open."""
    import json

    from experiments.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "optimizers", tmp_path, "keras_tuner")
    tracker.start_study_run(str(tmp_path), "optimizers", "fingerprint")
    live = tracker.start_trial_run(0, {}, {"optimizer": "adam"}, "")  # this process: alive
    gone = tracker.start_trial_run(1, {}, {"optimizer": "rmsprop"}, "")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    worker = json.loads(tracker.client.get_run(gone).data.tags["colorize.worker"])
    worker |= {"pid": ended.pid, "started": "1"}  # a process of this host that has ended
    ended.wait()
    tracker.set_tags(gone, {"colorize.worker": json.dumps(worker)})
    assert list(tracker.close_open_trial_runs("its worker stopped")) == [live]
    assert tracker.client.get_run(live).info.status == "RUNNING"
    closed = tracker.client.get_run(gone)
    assert closed.info.status == "FAILED"
    assert closed.data.tags["trial.fail_reason"] == "its worker stopped"


def test_a_second_keras_tuner_start_and_a_damaged_project_are_one_line(tmp_path):
    """Keras Tuner runs a study in one process: a start while another process runs it is
    refused in one line (exit 2), and so is a project whose file was cut short."""
    args = ["study=optimizers", "profile=smoke", "engine=keras_tuner", "n_trials=1",
            f"runs_dir={tmp_path}"]  # fmt: skip
    done = run_cli(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    project = tmp_path / "keras_tuner" / "optimizers"
    trial_json = next(project.glob("trial_*/trial.json"))
    intact = trial_json.read_text()
    trial_json.write_text(intact[: len(intact) // 2])
    damaged = run_cli(*args)
    assert damaged.returncode == 2 and "Traceback" not in damaged.stderr
    assert damaged.stderr.strip().count("\n") == 0, damaged.stderr
    assert f"{trial_json} cannot be read" in damaged.stderr
    trial_json.write_text(intact)

    from colorize.locks import hold

    held = hold(project / ".running.lock")  # as the process running the study holds it
    try:
        refused = run_cli(*args)
    finally:
        held.close()
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.strip().count("\n") == 0, refused.stderr
    assert "is running in another process" in refused.stderr
