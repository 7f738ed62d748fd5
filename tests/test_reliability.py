"""Kill and resume, graceful interruption: real processes, real stores, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from tests.studies_helpers import load_trials, mlflow_runs, run_cli

# Four epochs a trial so a trial can be stopped in its middle, a checkpoint after each; a 1 s
# heartbeat so a killed trial is seen as stale 3 s later.
ARGS = [
    "study=optimizers",
    "profile=smoke",
    "trainer.epochs=4",
    "trainer.patience=4",
    "trainer.checkpoint_every=0",
    "heartbeat=1",
]


def start(runs_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *ARGS, f"runs_dir={runs_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        if text in line:
            return
        assert time.monotonic() < deadline, f"no line with {text!r} in time"
    raise AssertionError(f"process ended before printing {text!r}")


def test_resume_after_kill_keeps_completed_trials_and_continues_from_checkpoint(tmp_path):
    process = start(tmp_path)
    wait_for_line(process, "trial 1 epoch 3/4")
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = {t.number: t for t in load_trials(tmp_path, "optimizers")}
    assert before[0].state.name == "COMPLETE" and before[1].state.name == "RUNNING"
    killed_run = before[1].user_attrs["mlflow_run_id"]
    time.sleep(3.5)  # past the heartbeat's grace period
    result = run_cli(*ARGS, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]

    after = {t.number: t for t in load_trials(tmp_path, "optimizers")}
    # finished trials untouched
    assert (
        after[0].value == before[0].value
        and after[0].datetime_complete == before[0].datetime_complete
    )
    # the killed trial failed and was retried once with the same values
    assert after[1].state.name == "FAIL"
    retries = [t for t in after.values() if t.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1 and retries[0].params == before[1].params
    assert retries[0].state.name == "COMPLETE"
    complete = [t for t in after.values() if t.state.name == "COMPLETE"]
    assert sorted(t.params["optimizer"] for t in complete) == ["adam", "adamax", "rmsprop"]

    runs = mlflow_runs(tmp_path, "optimizers")
    client = MlflowClient()
    children = runs[runs["tags.colorize.role"] == "trial"]
    assert "RUNNING" not in set(children["status"])
    assert client.get_run(killed_run).info.status == "FAILED"
    assert children["tags.colorize.trial"].is_unique  # no two runs claim one trial
    retry_run = client.get_run(retries[0].user_attrs["mlflow_run_id"])
    assert int(retry_run.data.tags["resumed_from_epoch"]) >= 2  # continued, not from scratch
    history = client.get_metric_history(retry_run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    assert not any((tmp_path / "checkpoints").rglob("state.json"))  # cleaned up when done


def test_sigterm_closes_the_trial_and_exits_interrupted(tmp_path):
    process = start(tmp_path)
    wait_for_line(process, "trial 0 epoch 2/4")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130
    trial = load_trials(tmp_path, "optimizers")[0]
    assert trial.state.name == "FAIL" and trial.user_attrs["interrupted"] is True
    runs = mlflow_runs(tmp_path, "optimizers")
    child = runs[runs["tags.colorize.role"] == "trial"].iloc[0]
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    assert child["status"] == "KILLED" and child["tags.trial.fail_reason"] == "interrupted"
    assert parent["status"] == "KILLED"

    result = run_cli(*ARGS, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load_trials(tmp_path, "optimizers")
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retried) == 1 and retried[0].state.name == "COMPLETE"
    assert retried[0].params == trial.params
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3


def test_grid_points_are_enqueued_once(tmp_path):
    from experiments.engine_optuna import open_study
    from experiments.space import load_study

    spec = load_study("architecture")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    open_study(url, spec)
    open_study(url, spec)
    study = optuna.load_study(study_name="architecture", storage=url)
    waiting = [
        t.system_attrs["fixed_params"] for t in study.get_trials() if t.state.name == "WAITING"
    ]
    assert len(waiting) == 12
    assert len({tuple(sorted(p.items())) for p in waiting}) == 12
