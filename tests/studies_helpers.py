"""Helpers for study tests: run the real command line and read the stores back."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
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


def native_log_lines(stderr: str) -> list[str]:
    """Lines in absl's log format ("E0000 ..."), e.g. TensorFlow's failed CUDA probe."""
    return re.findall(r"^[EWIF]\d{4} .*$", stderr, re.MULTILINE)


def run_colorize(*args: str, runs_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m colorize`; with `runs_dir`, `models:/` URIs resolve in that study's MLflow."""
    env = dict(os.environ)
    if runs_dir is not None:
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}"
    return subprocess.run(
        [sys.executable, "-m", "colorize", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def colorize_photo_with_registered_model(
    runs_dir: Path, work_dir: Path, rgb: np.ndarray, model: str = "optimizers"
) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """Write `rgb` as `<work_dir>/in/cat.png` and colorize it into `<work_dir>/out` with the
    model registered by the study in `runs_dir`; returns (photo, output folder, result)."""
    from tests.conftest import write_photo

    photo = write_photo(work_dir / "in" / "cat.png", rgb)
    out = work_dir / "out"
    result = run_colorize(
        "--model", f"models:/{model}/latest", "--input", str(work_dir / "in"),
        "--output", str(out), runs_dir=runs_dir,
    )  # fmt: skip
    return photo, out, result


def load_trials(runs_dir: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{runs_dir.resolve() / 'optuna.db'}"
    return optuna.load_study(study_name=study, storage=storage).get_trials()


def mlflow_runs(runs_dir: Path, study: str):
    mlflow.set_tracking_uri(f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[study])


def copy_stores(source: Path, target: Path) -> Path:
    """A copy of a runs folder whose stores point into the copy: MLflow records absolute
    artifact locations, so a plain copy would still write artifacts into `source`."""
    import shutil
    import sqlite3

    shutil.copytree(source, target, dirs_exist_ok=True)
    old, new = str(source.resolve()), str(target.resolve())
    with sqlite3.connect(target / "mlflow.db") as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for column in connection.execute(f'PRAGMA table_info("{table}")').fetchall():
                if "CHAR" in column[2].upper() or "TEXT" in column[2].upper():
                    connection.execute(
                        f'UPDATE "{table}" SET "{column[1]}" = REPLACE("{column[1]}", ?, ?) '
                        f'WHERE "{column[1]}" LIKE ?',
                        (old, new, f"%{old}%"),
                    )
    return target
