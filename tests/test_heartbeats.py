"""Heartbeats against liveness, on a real SQLite storage with real processes: a live worker on
this host is never failed for a late heartbeat, a dead one and a silent one of another host are;
a heartbeat write that fails is retried and said, and the heartbeat goes on."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import time

import optuna

from experiments.engines.optuna_engine import RetryOnce
from experiments.stores import liveness
from experiments.stores.heartbeats import LivenessStorage
from experiments.stores.store_urls import open_optuna_storage
from tests.servers import wait_until

HEARTBEAT = 1  # seconds; stale after 3


def running_trial(study: optuna.Study, worker: dict) -> int:
    """A RUNNING trial recorded as `worker`'s, with a heartbeat now; returns its id."""
    trial = study.ask()
    study._storage.set_trial_system_attr(trial._trial_id, liveness.WORKER_ATTR, worker)
    study._storage.record_heartbeat(trial._trial_id)
    return trial._trial_id


def newest_beat(path) -> float:
    """When the newest heartbeat in the SQLite storage at `path` was written (UTC seconds)."""
    from datetime import UTC, datetime

    with sqlite3.connect(path) as connection:
        (newest,) = connection.execute("SELECT MAX(heartbeat) FROM trial_heartbeats").fetchone()
    return datetime.fromisoformat(newest).replace(tzinfo=UTC).timestamp() if newest else 0.0


def worker_of_process(process: subprocess.Popen) -> dict:
    return {
        "host": liveness.host_id(),
        "hostname": liveness.host_name(),
        "pid": process.pid,
        "started": liveness.process_start(process.pid),
    }


def test_liveness_on_this_host_decides_before_a_stale_heartbeat(tmp_path):
    """Three trials, all silent past the grace period: one of a live process here (kept
    RUNNING), one of a process here that has ended (failed), one of another host (failed, by
    its heartbeat). Optuna's own `fail_stale_trials`, which `study.optimize` calls before each
    trial, is what judges them; each failed one says why and is queued again."""
    path = tmp_path / "optuna.db"
    storage = open_optuna_storage(f"sqlite:///{path}", HEARTBEAT, RetryOnce(path))
    study = optuna.create_study(study_name="s", storage=storage)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        live_id = running_trial(study, worker_of_process(alive))
        dead_id = running_trial(study, worker_of_process(ended))
        ended.wait()
        other_id = running_trial(
            study,
            {"host": "elsewhere/0123456789ab", "hostname": "elsewhere", "pid": alive.pid,
             "started": liveness.process_start(alive.pid)},
        )  # fmt: skip

        # judged again until the other host's trial is failed: its heartbeat, as old as the
        # others', is then past the grace period (3 beats) by the storage's own clock
        def other_failed() -> bool:
            optuna.storages.fail_stale_trials(study)
            return study._storage.get_trial(other_id).state.name == "FAIL"

        wait_until(other_failed, 30, "the other host's trial failed for its stale heartbeat")
        states = {t._trial_id: t for t in study.get_trials()}
        assert states[live_id].state.name == "RUNNING"  # its process lives: never failed
        assert states[dead_id].state.name == "FAIL"
        assert states[other_id].state.name == "FAIL"
        reason = states[other_id].user_attrs["fail_reason"]
        assert "heartbeat stopped" in reason and "host elsewhere" in reason
        retried = sorted(
            t.system_attrs["failed_trial"] for t in study.get_trials() if t.state.name == "WAITING"
        )
        assert retried == sorted([states[dead_id].number, states[other_id].number])
    finally:
        alive.kill()
        alive.wait()
    # the process is gone now: the next check fails its trial too
    optuna.storages.fail_stale_trials(study)
    assert study._storage.get_trial(live_id).state.name == "FAIL"


def test_a_failed_heartbeat_write_is_retried_and_said_and_the_heartbeat_goes_on(tmp_path, caplog):
    """Optuna's own heartbeat thread, beating every second into a SQLite file that another
    connection holds locked until the failed write is said and two beats more: each write in
    that time fails (after a short busy wait), a warning says so once, and when the lock goes the
    beats are written again and said to be."""
    from optuna.storages._heartbeat import get_heartbeat_thread

    path = tmp_path / "optuna.db"
    storage = LivenessStorage(
        f"sqlite:///{path}",
        engine_kwargs={"connect_args": {"timeout": 0.2}},
        heartbeat_interval=HEARTBEAT,
        grace_period=3 * HEARTBEAT,
    )
    study = optuna.create_study(study_name="s", storage=storage)
    trial = study.ask()

    def said(words: str) -> bool:
        return any(words in record.getMessage() for record in caplog.records)

    thread = get_heartbeat_thread(trial._trial_id, storage)
    with caplog.at_level(logging.WARNING, logger="experiments.stores.heartbeats"):
        thread.start()
        first = newest_beat(path)
        wait_until(lambda: newest_beat(path) > first, 30, "a beat of the thread")
        lock = sqlite3.connect(path, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            wait_until(lambda: said("not written"), 30, "the warning of a failed beat")
            time.sleep(2.5 * HEARTBEAT)  # the lock held for two more beats: their failures
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        unlocked = time.time()
        wait_until(lambda: said("written again"), 30, "the heartbeat written again")
        assert thread._thread.is_alive(), "the heartbeat thread ended"
        thread.join()
    messages = [record.getMessage() for record in caplog.records]
    failed = [m for m in messages if "not written" in m]
    assert len(failed) == 1, messages  # said once, not at every beat
    assert f"heartbeat of trial {trial.number} not written" in failed[0]
    assert "database is locked" in failed[0]
    assert f"heartbeat of trial {trial.number} written again" in messages
    assert newest_beat(path) >= unlocked - 1.0  # beats resumed after the lock


def test_a_beat_that_fails_right_after_the_first_names_its_trial(tmp_path, monkeypatch, caplog):
    """The store locked the moment the first beat is in (before anything else is read): the
    next beat's failure still names the trial by its number (once it named only the trial's
    database id, when the lock came between the write and the look-up of the number)."""
    path = tmp_path / "optuna.db"
    storage = LivenessStorage(
        f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 0.2}},
        heartbeat_interval=HEARTBEAT, grace_period=3 * HEARTBEAT,
    )  # fmt: skip
    trial = optuna.create_study(study_name="s", storage=storage).ask()
    lock = sqlite3.connect(path, isolation_level=None)
    write = optuna.storages.RDBStorage.record_heartbeat

    def write_then_lock(self, trial_id: int) -> None:
        write(self, trial_id)
        if not lock.in_transaction:
            lock.execute("BEGIN EXCLUSIVE")

    monkeypatch.setattr(optuna.storages.RDBStorage, "record_heartbeat", write_then_lock)
    try:
        with caplog.at_level(logging.WARNING, logger="experiments.stores.heartbeats"):
            storage.record_heartbeat(trial._trial_id)  # written, then the store is locked
            assert lock.in_transaction
            storage.record_heartbeat(trial._trial_id)  # fails
    finally:
        if lock.in_transaction:
            lock.execute("ROLLBACK")
        lock.close()
    (failed,) = [r.getMessage() for r in caplog.records if "not written" in r.getMessage()]
    assert failed.startswith(f"heartbeat of trial {trial.number} not written"), failed


def test_a_trial_reclaimed_mid_run_has_its_run_closed_and_its_slow_worker_steps_aside(tmp_path):
    """Worker A (host a) is frozen (SIGSTOP) in its first trial's fit; worker B (host b), on the
    same stores, runs the other grid points, and reclaims it once A's heartbeat is stale: the
    trial FAILs with the reason, its MLflow run is closed FAILED with it, B runs it again and finishes
    the study. A, let go, finds its trial taken at the next epoch end and ends without a
    traceback; nothing is left RUNNING and every grid point finished once."""
    import os
    import signal

    from tests.studies_helpers import load_trials, mlflow_runs

    args = [sys.executable, "-m", "experiments.run", "study=optimizers", "profile=smoke",
            "trainer.epochs=3", "trainer.patience=3", "heartbeat=2", f"runs_dir={tmp_path}"]  # fmt: skip

    def start(host: str) -> subprocess.Popen:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", liveness.HOST_NAME_ENV: host}
        return subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip

    first = start("host-a")
    seen = []
    for line in first.stdout:
        seen.append(line)
        if "trial 0 epoch 1/3" in line:
            break
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        second = start("host-b")
        out, _ = second.communicate(timeout=600)
        assert second.returncode == 0, out[-3000:]
        trial = load_trials(tmp_path, "optimizers")[0]
        assert trial.state.name == "FAIL"
        assert "heartbeat stopped" in trial.user_attrs["fail_reason"]
        runs = mlflow_runs(tmp_path, "optimizers")
        run = runs[runs["run_id"] == trial.user_attrs["mlflow_run_id"]].iloc[0]
        assert run["status"] == "FAILED"  # closed by B, while A still holds it
        assert "heartbeat stopped" in run["tags.trial.fail_reason"]
    finally:
        os.killpg(first.pid, signal.SIGCONT)
    rest, _ = first.communicate(timeout=600)
    out_a = "".join(seen) + rest
    assert first.returncode == 0, out_a[-3000:]
    assert "Traceback" not in out_a and "Traceback" not in out
    trials = load_trials(tmp_path, "optimizers")
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    complete = sorted(t.params["optimizer"] for t in trials if t.state.name == "COMPLETE")
    assert complete == ["adam", "adamax", "rmsprop"]
    runs = mlflow_runs(tmp_path, "optimizers")
    assert "RUNNING" not in set(runs["status"])
    run = runs[runs["run_id"] == trial.user_attrs["mlflow_run_id"]].iloc[0]
    assert run["status"] == "FAILED" and "reclaimed" in run["tags.trial.fail_reason"]
