"""Unexpected errors inside a trial, made real: a file size limit (a full disk, as a study meets
it) and a locked SQLite store. Never a traceback, never a trial or run left RUNNING, and the next
run of the same command retries the failed grid point and finishes the study."""

from __future__ import annotations

import os
import re
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from experiments.tracking import HTTP_RETRIES
from tests.studies_helpers import load_trials, mlflow_runs, run_cli

ARGS = ["study=optimizers", "profile=smoke", "trainer.checkpoint_every=0"]
OPTIMIZERS = ["adam", "adamax", "rmsprop"]
FILE_LIMIT = (
    20_000 * 1024
)  # `ulimit -f 20000`: a trial's model file (about 25 MB) cannot be written


def nothing_running(runs_dir: Path) -> None:
    trials = load_trials(runs_dir, "optimizers")
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    runs = mlflow_runs(runs_dir, "optimizers")
    assert "RUNNING" not in set(runs["status"]), runs[["status", "tags.mlflow.runName"]]


def finishes_every_grid_point(runs_dir: Path) -> None:
    """The same command, without the fault, retries what failed and completes the study."""
    result = run_cli(*ARGS, f"runs_dir={runs_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load_trials(runs_dir, "optimizers")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["optimizer"] for t in complete) == OPTIMIZERS  # each exactly once
    nothing_running(runs_dir)
    runs = mlflow_runs(runs_dir, "optimizers")
    assert runs[runs["tags.colorize.role"] == "study"]["status"].tolist() == ["FINISHED"]
    assert "registered as models:/optimizers/latest" in result.stdout
    assert MlflowClient().search_model_versions("name = 'optimizers'")


def test_a_full_disk_stops_the_study_in_one_line_and_the_rerun_finishes_it(tmp_path):
    """Under `ulimit -f 20000` every trial's model file fails to be written: the study stops at
    the first (exit 1, one line naming the fault), with its trial FAILED in Optuna and MLflow
    and the study's run closed; rerun at once without the limit, it finishes every point."""

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))

    result = subprocess.run(
        [sys.executable, "-m", "experiments.run", *ARGS, f"runs_dir={tmp_path}"],
        capture_output=True, text=True, timeout=600, preexec_fn=limit_file_size,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = said_lines(result.stderr)  # the whole stderr, but progress bars and warnings
    assert len(errors) == 1 and "File too large" in errors[0], result.stderr[-3000:]
    nothing_running(tmp_path)
    (failed,) = load_trials(tmp_path, "optimizers")[:1]
    assert failed.state.name == "FAIL" and failed.user_attrs["retry"] is True
    assert "File too large" in failed.user_attrs["fail_reason"]
    runs = mlflow_runs(tmp_path, "optimizers")
    assert runs[runs["tags.colorize.role"] == "study"]["status"].tolist() == ["FAILED"]
    trial_run = runs[runs["tags.colorize.role"] == "trial"].iloc[0]
    assert trial_run["status"] == "FAILED"
    assert "File too large" in trial_run["tags.trial.fail_reason"]

    finishes_every_grid_point(tmp_path)
    retried = [t for t in load_trials(tmp_path, "optimizers") if "failed_trial" in t.system_attrs]
    assert [t.system_attrs["failed_trial"] for t in retried] == [failed.number]


def test_a_locked_store_fails_the_trial_the_study_goes_on_and_the_rerun_retries_it(tmp_path):
    """Another process holds the MLflow store locked (SQLite `database is locked`, after
    MLflow's 20 s busy wait) during the first trial: that trial fails with the reason, the
    other grid points run, the study says which point failed; the next run retries it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *ARGS, f"runs_dir={tmp_path}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "trial-000 adamax seed=0 started" in line:
            break
    lock = sqlite3.connect(tmp_path / "mlflow.db", timeout=60, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    time.sleep(30)  # the trial's next write waits 20 s, then fails; its close waits, then works
    lock.execute("ROLLBACK")
    lock.close()
    out = "".join(seen) + process.stdout.read()
    assert process.wait(timeout=600) == 0, out[-3000:]
    assert "Traceback" not in out
    assert "note: trial 0 (optimizer=adamax seed=0) failed:" in out
    assert "database is locked" in out and "the next run of this command retries it" in out
    trials = load_trials(tmp_path, "optimizers")
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE", "COMPLETE"]
    nothing_running(tmp_path)
    runs = mlflow_runs(tmp_path, "optimizers")
    failed_run = runs[runs["tags.colorize.trial"] == "0"].iloc[0]
    assert failed_run["status"] == "FAILED"
    assert "database is locked" in failed_run["tags.trial.fail_reason"]

    finishes_every_grid_point(tmp_path)


def test_a_damaged_checkpoint_is_started_over_with_a_warning_and_the_study_finishes(tmp_path):
    """`kill -9` of a study right after its first trial's first checkpoint, then that
    checkpoint's model file damaged (bits flipped in its middle, as bad storage does): the
    rerun warns that it starts the trial over, never shows a traceback, and finishes."""
    from tests.test_reliability import ARGS as THREE_EPOCHS
    from tests.test_reliability import checkpointed, kill_group, start, wait_for_line, wait_until

    first = start(tmp_path)
    wait_for_line(first, "trial-000 adamax seed=0 started")
    wait_until(lambda: checkpointed(tmp_path, 1))
    kill_group(first)
    (model_file,) = (tmp_path / "checkpoints").rglob("model-*.keras")
    data = bytearray(model_file.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(255 - b for b in data[middle : middle + 4096])
    model_file.write_bytes(bytes(data))

    result = run_cli(*THREE_EPOCHS, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "ignoring unreadable checkpoint" in result.stderr
    assert "the fit starts over" in result.stderr
    trials = load_trials(tmp_path, "optimizers")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["optimizer"] for t in complete) == OPTIMIZERS
    nothing_running(tmp_path)
    retried = next(t for t in complete if t.system_attrs.get("failed_trial") == 0)
    run = MlflowClient().get_run(retried.user_attrs["mlflow_run_id"])
    assert "resumed_from_epoch" not in run.data.tags  # started over, not from the damaged one
    steps = sorted(m.step for m in MlflowClient().get_metric_history(run.info.run_id, "val_loss"))
    assert steps == [1, 2, 3]


PROGRESS_BAR = re.compile(r"trials:\s+\d+%\|[^|]*\|[^\]]*\]")


def said_lines(stderr: str) -> list[str]:
    """What a command said on stderr, whole, less its progress bars (tqdm redraws them with
    carriage returns, and a line said after one may follow it on the same line) and the
    warnings it names as such: everything else, which a one-line failure must keep to one."""
    said = []
    for line in re.split(r"[\r\n]+", PROGRESS_BAR.sub("\n", stderr)):
        if line.strip() and not line.startswith("WARNING: "):
            said.append(line)
    return said


def worker_environments(runs_dir: Path) -> list[dict[str, str]]:
    """The environment of each extra worker (`workers=1` on its command line) of the study
    kept in `runs_dir`, as the kernel holds it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            if str(runs_dir).encode() in command and b"workers=1" in command:
                raw = (entry / "environ").read_bytes().decode(errors="replace").split("\0")
                found.append(dict(item.split("=", 1) for item in raw if "=" in item))
        except OSError:
            continue  # ended meanwhile
    return found


def command_lines() -> list[bytes]:
    """The command line of every process on this machine."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue  # ended meanwhile
    return lines


def test_an_mlflow_server_stopped_mid_study_stops_it_in_one_line_and_the_rerun_finishes(
    tmp_path,
):
    """The study's MLflow server stops while its first trial runs (two workers): the command
    ends in one line naming it (exit 1, no traceback), its other worker stopped too, with no
    trial left RUNNING in Optuna. With the server back, the same command closes what was left
    open, retries what failed and finishes: nothing is left RUNNING in Optuna or in MLflow."""
    from tests.servers import free_port, mlflow_server
    from tests.test_reliability import ARGS as THREE_EPOCHS
    from tests.test_reliability import wait_for_line

    backend, artifacts = f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts"
    artifacts.mkdir()
    port = free_port()
    runs_dir = tmp_path / "runs"
    args = [*THREE_EPOCHS, f"runs_dir={runs_dir}", f"tracking_uri=http://127.0.0.1:{port}",
            "workers=2"]  # fmt: skip
    stderr_file = tmp_path / "stderr.txt"
    with mlflow_server(backend, artifacts, port=port), open(stderr_file, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "experiments.run", *args], stdout=subprocess.PIPE,
            stderr=stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        seen = wait_for_line(process, "trial 0 epoch 1/3")
        # the mechanism: the study capped MLflow's retries before starting its worker, which
        # inherited the cap (MLflow alone retries 7 times over about 4 minutes)
        (worker,) = worker_environments(runs_dir)
        assert (
            worker["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
            == HTTP_RETRIES["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
            == "3"
        )
        assert worker["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    started = time.monotonic()
    out = "".join(seen) + process.stdout.read()
    assert process.wait(timeout=300) == 1, out[-3000:]
    assert time.monotonic() - started < 120  # a generous guard beside the mechanism
    err = stderr_file.read_text()
    assert "Traceback" not in err + out
    errors = said_lines(err)  # the whole stderr, but progress bars and warnings
    assert len(errors) == 1, err[-3000:]
    assert "the study stopped: trial " in errors[0] and f":{port} is unreachable" in errors[0]
    still = [c for c in command_lines() if str(runs_dir).encode() in c]
    assert not still, still  # the worker it started is gone too
    trials = load_trials(runs_dir, "optimizers")
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    assert trials[0].state.name == "FAIL"

    with mlflow_server(backend, artifacts, port=port) as url:
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr[-3000:]
        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("optimizers")
        runs = client.search_runs([experiment.experiment_id])
    assert "RUNNING" not in {r.info.status for r in runs}
    trial_runs = [r for r in runs if r.data.tags["colorize.role"] == "trial"]
    failed = [r for r in trial_runs if r.data.tags["colorize.trial"] == "0"]
    assert [r.info.status for r in failed] == ["FAILED"]  # closed by the rerun
    finished = [r for r in trial_runs if r.info.status == "FINISHED"]
    assert sorted(r.data.params["optimizer"] for r in finished) == OPTIMIZERS
    (parent,) = [r for r in runs if r.data.tags["colorize.role"] == "study"]
    assert parent.info.status == "FINISHED"
    trials = load_trials(runs_dir, "optimizers")
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    complete = sorted(t.params["optimizer"] for t in trials if t.state.name == "COMPLETE")
    assert complete == OPTIMIZERS
