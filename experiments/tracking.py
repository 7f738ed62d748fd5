"""MLflow records of a study: one experiment per study, a parent run for the study and a child run
per trial, with the trial's params, per-epoch curves, final metrics, tags and artifacts.

All calls go through `MlflowClient` with explicit run ids, so nothing depends on a global
"active run" and a run's status always follows its trial (FINISHED, KILLED for pruned or
interrupted, FAILED with the reason).
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from experiments.errors import UsageError  # noqa: E402
from experiments.stores import ENGINE_TAG, ROLE_TAG, STUDY_TAG, TRIAL_TAG  # noqa: E402

PACKAGES = (
    "keras",
    "tensorflow",
    "jax",
    "torch",
    "optuna",
    "keras-tuner",
    "mlflow",
    "scikit-image",
    "numpy",
)


def package_versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def host_tags() -> dict[str, str]:
    """The machine a study ran on: platform, Python, CPU count and any NVIDIA GPUs."""
    tags = {
        "host.platform": platform.platform(),
        "host.machine": platform.machine(),
        "host.python": platform.python_version(),
        "host.cpu_count": str(os.cpu_count() or ""),
    }
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        gpus = []
    tags["host.gpu"] = ", ".join(gpus) if gpus else "none"
    return tags


class Tracker:
    """The MLflow side of one study."""

    def __init__(self, tracking_uri: str, study: str, runs_dir: str | Path):
        self.tracking_uri = tracking_uri
        self.study = study
        self.runs_dir = Path(runs_dir)
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = self._experiment()
        self.parent_run_id: str | None = None

    def _check_reachable(self) -> None:
        """Fail fast on an unreachable server instead of waiting out MLflow's retries."""
        if not self.tracking_uri.startswith(("http://", "https://")):
            return
        import requests

        try:
            requests.get(self.tracking_uri.rstrip("/") + "/health", timeout=5).raise_for_status()
        except requests.RequestException as error:
            reason = str(error).splitlines()[0][:200]
            raise UsageError(
                f"tracking_uri {self.tracking_uri} is unreachable: {reason}"
            ) from None

    def _experiment(self) -> str:
        self._check_reachable()
        try:
            found = self.client.get_experiment_by_name(self.study)
            if found is not None:
                return found.experiment_id
            location = None
            if self.tracking_uri.startswith("sqlite:"):
                location = (self.runs_dir.resolve() / "artifacts").as_uri()
            return self.client.create_experiment(self.study, artifact_location=location)
        except mlflow.exceptions.MlflowException as error:
            raise UsageError(
                f"tracking_uri {self.tracking_uri}: {str(error).splitlines()[0]}"
            ) from None
        except Exception as error:  # connection errors surface as several types
            raise UsageError(
                f"tracking_uri {self.tracking_uri} is unreachable: {str(error).splitlines()[0][:200]}"
            ) from None

    # --- the study's parent run -------------------------------------------------------------
    def start_study_run(self, storage_url: str, engine: str) -> str:
        """Reopen this study's parent run for the same storage, or create it."""
        existing = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{ROLE_TAG}` = 'study' and tags.`{ENGINE_TAG}` = '{engine}'",
            max_results=1,
        )
        if existing:
            self.parent_run_id = existing[0].info.run_id
            self.client.update_run(self.parent_run_id, status="RUNNING")
        else:
            run = self.client.create_run(
                self.experiment_id,
                run_name=f"{self.study} ({engine})",
                tags={
                    ROLE_TAG: "study",
                    STUDY_TAG: self.study,
                    ENGINE_TAG: engine,
                    "optuna.storage": storage_url,
                },
            )
            self.parent_run_id = run.info.run_id
        return self.parent_run_id

    def log_study_setup(
        self, config_yaml: str, params: dict[str, Any], manifest: list[dict], study_yaml: str
    ) -> None:
        run_id = self.parent_run_id
        tags = host_tags() | {
            # params cannot change once logged; the budget of this (re)start is a tag
            "study.total_trials": params.get("total_trials", ""),
            "git.commit": git_commit(),
        }
        tags |= {f"version.{k}": v for k, v in package_versions().items()}
        tags["keras.backend"] = keras.backend.backend()
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        existing = self.client.get_run(run_id).data.params
        new_params = {k: str(v)[:6000] for k, v in params.items() if k not in existing}
        if new_params:
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in new_params.items()])
        self.client.log_text(run_id, config_yaml, "config.yaml")
        self.client.log_text(run_id, study_yaml, "study.yaml")
        self.client.log_dict(run_id, {"photos": manifest}, "dataset_manifest.json")

    def end_study_run(self, status: str, summary: dict[str, Any] | None = None) -> None:
        if self.parent_run_id is None:
            return
        if summary:
            self.client.log_batch(
                self.parent_run_id,
                metrics=[
                    Metric(k, float(v), int(time.time() * 1000), 0) for k, v in summary.items()
                ],
            )
        self.client.set_terminated(self.parent_run_id, status=status)

    # --- one trial ----------------------------------------------------------------------------
    def start_trial_run(
        self, number: int, params: dict[str, Any], config_yaml: str, engine: str
    ) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{number:03d}",
            tags={
                "mlflow.parentRunId": self.parent_run_id,
                ROLE_TAG: "trial",
                STUDY_TAG: self.study,
                TRIAL_TAG: str(number),
                ENGINE_TAG: engine,
                "trial.state": "RUNNING",
            },
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        self.client.log_text(run_id, config_yaml, "config.yaml")
        return run_id

    def trial_run_id(self, number: int, engine: str) -> str | None:
        """The finished MLflow run of trial `number` of this study and engine."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{ROLE_TAG}` = 'trial' and tags.`{TRIAL_TAG}` = '{number}' "
                f"and tags.`{ENGINE_TAG}` = '{engine}' and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def epoch_logger(self, run_id: str) -> keras.callbacks.Callback:
        return _EpochLogger(self.client, run_id)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in finite.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure, name: str) -> None:
        self.client.log_figure(
            run_id, figure, name, save_kwargs={"dpi": 110, "bbox_inches": "tight"}
        )
        plt.close(figure)

    def close_if_running(self, run_id: str, reason: str) -> bool:
        """End a run still marked RUNNING although its trial is over (its worker was killed)."""
        try:
            run = self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            return False
        if run.info.status != "RUNNING":
            return False
        self.end_trial_run(run_id, "FAIL", reason)
        return True

    def log_history(self, run_id: str, history: dict[str, list[float]]) -> None:
        """Per-epoch metrics (steps 1..n) of epochs trained before, e.g. by a killed attempt."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, values in history.items()
            for step, value in enumerate(values, start=1)
            if np.isfinite(value)
        ]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 per batch
            self.client.log_batch(run_id, metrics=metrics[start : start + 900])

    def end_trial_run(
        self, run_id: str, state: str, reason: str | None = None, status: str | None = None
    ) -> None:
        """End a trial's run: state is COMPLETE, PRUNED or FAIL (Optuna's words); the run's
        status follows (FINISHED, KILLED, FAILED) unless given."""
        status = status or {"COMPLETE": "FINISHED", "PRUNED": "KILLED", "FAIL": "FAILED"}[state]
        tags = {"trial.state": state}
        if reason:
            tags["trial.fail_reason"] = reason[:5000]
        self.set_tags(run_id, tags)
        self.client.set_terminated(run_id, status=status)


class _EpochLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (loss, val_loss, accuracy, val_accuracy, learning_rate)."""

    def __init__(self, client: MlflowClient, run_id: str):
        super().__init__()
        self.client, self.run_id = client, run_id

    def on_epoch_end(self, epoch, logs=None):
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, epoch + 1)
            for k, v in (logs or {}).items()
            if np.isfinite(float(v))
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)


def learning_curve_figure(history: dict[str, list[float]], title: str):
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for key, style in (("loss", "-"), ("val_loss", "--")):
        if key in history:
            loss_axis.plot(epochs[: len(history[key])], history[key], style, label=key)
    for key, style in (("accuracy", "-"), ("val_accuracy", "--")):
        if key in history:
            acc_axis.plot(epochs[: len(history[key])], history[key], style, label=key)
    loss_axis.set(xlabel="epoch", ylabel="MSE on a/b / 128", title=title)
    acc_axis.set(xlabel="epoch", ylabel="accuracy (Keras)")
    loss_axis.legend()
    acc_axis.legend()
    figure.tight_layout()
    return figure


def sample_grid_figure(gray: np.ndarray, predicted: np.ndarray, truth: np.ndarray, title: str):
    """Rows of validation photos: gray input | predicted | truth (RGB in [0, 1])."""
    rows = len(gray)
    figure, axes = plt.subplots(rows, 3, figsize=(6, 2 * rows), squeeze=False)
    for row in range(rows):
        for column, (image, label) in enumerate(
            ((gray[row], "gray input"), (predicted[row], "predicted"), (truth[row], "truth"))
        ):
            axis = axes[row][column]
            axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(label, fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
