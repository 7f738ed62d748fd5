"""Helpers for study tests: run the real command line and read the stores back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import optuna


def run_cli(
    *args: str, cwd: Path | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def load_trials(runs_dir: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{runs_dir.resolve() / 'optuna.db'}"
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def mlflow_runs(runs_dir: Path, study: str):
    mlflow.set_tracking_uri(f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[study])
