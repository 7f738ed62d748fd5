"""Kill and resume the way users meet it: `kill -9` of the whole process group, then the same
command again at once, with the default heartbeat. Real processes, real stores, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient

from tests.studies_helpers import load_trials, mlflow_runs, run_cli

# Three epochs a trial, so a trial can be stopped in its middle, with a checkpoint after each.
ARGS = [
    "study=optimizers",
    "profile=smoke",
    "trainer.epochs=3",
    "trainer.patience=3",
    "trainer.checkpoint_every=0",
]
OPTIMIZERS = ["adam", "adamax", "rmsprop"]


def start(runs_dir: Path, *extra: str) -> subprocess.Popen:
    """The study command in its own process group, its output readable line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *ARGS, *extra, f"runs_dir={runs_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, killed whole
    )


def wait_for_line(process: subprocess.Popen, text: str, timeout: float = 300) -> list[str]:
    """Read the process's output up to a line holding `text`; returns the lines read."""
    deadline, seen = time.monotonic() + timeout, []
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return seen
        assert time.monotonic() < deadline, f"no line with {text!r} in time"
    raise AssertionError(f"process ended before printing {text!r}")


def wait_until(check, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def checkpointed(runs_dir: Path, epochs: int) -> bool:
    for state in (runs_dir / "checkpoints").rglob("state.json"):
        try:
            if json.loads(state.read_text())["epochs_done"] >= epochs:
                return True
        except (OSError, ValueError, KeyError):
            continue
    return False


def completed(runs_dir: Path) -> int:
    try:
        return sum(t.state.name == "COMPLETE" for t in load_trials(runs_dir, "optimizers"))
    except Exception:  # the study is not created yet
        return 0


def test_kill_then_immediate_rerun_at_three_points_finishes_every_grid_point_once(tmp_path):
    """`kill -9` of the process group (1) during a trial's first epoch, then, in the rerun
    started at once, (2) right after a checkpoint, then, in the next, (3) right after a trial
    finished; a last rerun at once finishes the study. Default heartbeat, no waiting."""
    lines = []
    first = start(tmp_path)  # 1. adamax finishes, adam (trial 1) is killed in its first epoch
    lines += wait_for_line(first, "trial-001 adam seed=0 started")
    kill_group(first)
    lines += first.stdout.readlines()
    second = start(tmp_path)  # 2. rmsprop finishes; adam's retry (trial 3) is killed right
    lines += wait_for_line(second, "trial-003 adam seed=0 started")  # after its checkpoint
    wait_until(lambda: checkpointed(tmp_path, 2))
    kill_group(second)
    lines += second.stdout.readlines()
    third = start(tmp_path)  # 3. the retry of the retry continues from it, finishes, and the
    wait_until(lambda: completed(tmp_path) == 3)  # process is killed right after
    kill_group(third)
    lines += third.stdout.readlines()
    before = {t.number: t for t in load_trials(tmp_path, "optimizers")}
    result = run_cli(*ARGS, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not [line for line in [*lines, *result.stdout.splitlines()] if "waiting" in line]

    after = load_trials(tmp_path, "optimizers")
    assert not [t for t in after if t.state.name == "RUNNING"]
    complete = [t for t in after if t.state.name == "COMPLETE"]
    assert sorted(t.params["optimizer"] for t in complete) == OPTIMIZERS  # each exactly once
    for number, trial in before.items():
        if trial.state.name == "COMPLETE":  # finished trials untouched
            assert after[number].datetime_complete == trial.datetime_complete
    runs = mlflow_runs(tmp_path, "optimizers")
    children = runs[runs["tags.colorize.role"] == "trial"]
    assert "RUNNING" not in set(children["status"])
    finished = children[children["status"] == "FINISHED"]
    assert sorted(finished["params.optimizer"]) == OPTIMIZERS
    assert runs[runs["tags.colorize.role"] == "study"]["status"].tolist() == ["FINISHED"]
    adam = next(t for t in complete if t.params["optimizer"] == "adam")
    assert adam.system_attrs["retry_history"] == [1, 3]  # killed twice, retried with its values
    run = MlflowClient().get_run(adam.user_attrs["mlflow_run_id"])
    assert int(run.data.tags["resumed_from_epoch"]) >= 2  # from the checkpoint, not from scratch
    steps = sorted(m.step for m in MlflowClient().get_metric_history(run.info.run_id, "val_loss"))
    assert steps == [1, 2, 3]
    assert not any((tmp_path / "checkpoints").rglob("state.json"))  # cleaned up when done


def test_sigterm_closes_the_trial_and_exits_interrupted(tmp_path):
    process = start(tmp_path)
    wait_for_line(process, "trial 0 epoch 2/3")
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


def foreign_running_trial(storage, study_name: str, heartbeat: bool) -> int:
    """A trial RUNNING in a worker on another host (as if that machine still worked on it)."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    trial = study.ask()
    storage.set_trial_system_attr(
        trial._trial_id, "worker", {"host": "elsewhere/0123456789ab", "hostname": "elsewhere",
                                    "pid": 4242, "started": "1"}
    )  # fmt: skip
    if heartbeat:
        storage.record_heartbeat(trial._trial_id)
    return trial.number


def test_a_trial_of_another_host_is_waited_for_with_a_countdown_then_retried(tmp_path):
    """The other host beats for a while (alive), then stops (lost): the rerun waits, showing
    when it will give up, then fails that trial and runs it again itself."""
    import threading

    from experiments.stores.store_urls import open_optuna_storage

    args = ["study=optimizers", "profile=smoke", f"runs_dir={tmp_path}", "heartbeat=2"]
    create_study(args)
    storage = open_optuna_storage(f"sqlite:///{tmp_path / 'optuna.db'}", 2)
    number = foreign_running_trial(storage, "optimizers", heartbeat=True)
    trial_id = next(
        t._trial_id
        for t in optuna.load_study(study_name="optimizers", storage=storage).get_trials()
        if t.number == number
    )
    rerun = start_args(args)
    lines: list[str] = []
    waiting = threading.Event()
    kept_while_alive: list[bool] = []

    def read() -> None:
        for line in rerun.stdout:
            lines.append(line)
            if "waiting: trial" in line:
                waiting.set()

    def beat() -> None:
        """Alive until the rerun waits for it and for longer than its grace (3 beats of 2 s),
        then lost: however long the rerun's own trials take on a busy machine."""
        lost_at = None
        while rerun.poll() is None:
            if waiting.is_set() and lost_at is None:
                lost_at = time.monotonic() + 10
            if lost_at is not None and time.monotonic() > lost_at:
                state = storage.get_trial(trial_id).state.name
                kept_while_alive.append(state == "RUNNING")
                return
            storage.record_heartbeat(trial_id)
            time.sleep(0.5)

    threads = [threading.Thread(target=f, daemon=True) for f in (read, beat)]
    for thread in threads:
        thread.start()
    rerun.wait(timeout=300)
    for thread in threads:
        thread.join(timeout=30)
    out = "".join(lines)
    assert rerun.returncode == 0, out[-3000:]
    assert f"waiting: trial {number} runs in process 4242 on host elsewhere" in out
    assert kept_while_alive == [True], out[-3000:]  # not retried while its heartbeat went on
    assert "retried in" in out  # its countdown
    trials = load_trials(tmp_path, "optimizers")
    assert not [t for t in trials if t.state.name == "RUNNING"]
    assert (
        sorted(t.params["optimizer"] for t in trials if t.state.name == "COMPLETE") == OPTIMIZERS
    )


def create_study(args: list[str]) -> None:
    """The study as a run creates it (its grid queued), without running a trial."""
    from experiments.engines.factory import make_engine
    from experiments.settings.config import compose
    from experiments.settings.fingerprint import environment, make_fingerprint
    from experiments.settings.study_spec import load_study
    from experiments.trials.data import StudyData

    cfg, profile = compose(args)
    spec = load_study(cfg.study).for_profile(profile, cfg.trainer.epochs)
    current = make_fingerprint(cfg, spec, profile.epoch_scale, StudyData(cfg).key)
    make_engine(cfg, spec, spec.name, Path(cfg.runs_dir)).open(current, environment())


def start_args(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def test_journal_storage_runs_a_study_and_says_what_it_cannot_detect(tmp_path):
    from experiments.stores.store_urls import open_optuna_storage

    storage = f"journal:{tmp_path / 'study.log'}"
    args = ["study=optimizers", "profile=smoke", f"runs_dir={tmp_path}", f"storage={storage}"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    trials = optuna.load_study(
        study_name="optimizers", storage=open_optuna_storage(storage)
    ).get_trials()
    assert (
        sorted(t.params["optimizer"] for t in trials if t.state.name == "COMPLETE") == OPTIMIZERS
    )
    number = foreign_running_trial(open_optuna_storage(storage), "optimizers", heartbeat=False)
    again = run_cli(*args)
    assert again.returncode == 3, again.stderr[-3000:]  # not finished, and says so
    assert f"trial {number} is still RUNNING in process 4242 on host elsewhere" in again.stderr
    assert "has no heartbeats" in again.stderr
    assert "trials table" not in again.stdout and "best trial" not in again.stdout


def test_grid_points_are_enqueued_once(tmp_path):
    from experiments.engines.factory import make_engine
    from experiments.settings.config import compose
    from experiments.settings.fingerprint import Fingerprint
    from experiments.settings.study_spec import load_study

    cfg, profile = compose(["study=architecture", f"runs_dir={tmp_path}"])
    spec = load_study("architecture")
    for _ in range(2):
        make_engine(cfg, spec, "architecture", tmp_path).open(Fingerprint({"x": 1}), {})
    study = optuna.load_study(
        study_name="architecture", storage=f"sqlite:///{tmp_path / 'optuna.db'}"
    )
    waiting = [
        t.system_attrs["fixed_params"] for t in study.get_trials() if t.state.name == "WAITING"
    ]
    assert len(waiting) == 12
    assert len({tuple(sorted(p.items())) for p in waiting}) == 12
