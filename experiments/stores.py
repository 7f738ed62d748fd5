"""Where a study's records live, and the tags that find them: shared by the writer (tracking,
engines) and the readers (report, UI). Imports nothing heavy, so readers start fast."""

from __future__ import annotations

from pathlib import Path

ROLE_TAG = "colorize.role"  # "study" for the parent run, "trial" for each trial's run
STUDY_TAG = "colorize.study"
TRIAL_TAG = "colorize.trial"  # the trial's number
ENGINE_TAG = "colorize.engine"  # optuna or keras_tuner


def default_tracking_uri(runs_dir: str | Path) -> str:
    """The MLflow store of a runs folder."""
    return f"sqlite:///{Path(runs_dir).resolve() / 'mlflow.db'}"


def default_storage(runs_dir: str | Path) -> str:
    """The Optuna storage of a runs folder."""
    return f"sqlite:///{Path(runs_dir).resolve() / 'optuna.db'}"
