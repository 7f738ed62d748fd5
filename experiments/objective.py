"""One trial, engine-agnostic: values -> config -> model -> fit -> metrics, all recorded in MLflow.

Both engines (Optuna and Keras Tuner) call `TrialRunner.run`; only how values are chosen and how
a trial's end is reported back to the engine differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
from tqdm.auto import tqdm

from colorize import checkpoint, lab
from colorize.data import LabData
from colorize.metrics import colorization_metrics
from colorize.model import InfeasibleArchitecture, build_model
from colorize.predict import predict_lab, save_model
from colorize.train import TrainingDiverged, set_precision, train
from experiments import config as config_module
from experiments.config import Profile, RunConfig
from experiments.space import StudySpec
from experiments.tracking import Tracker, learning_curve_figure, sample_grid_figure

log = logging.getLogger(__name__)
SAMPLE_PHOTOS = 4  # validation photos shown in each trial's sample grid


class TrialFailed(Exception):
    """The trial could not finish (infeasible architecture, diverging loss); message says why."""


@dataclass
class TrialRecord:
    """What a finished trial produced."""

    value: float
    metrics: dict[str, float]
    run_id: str
    model_path: Path | None = None
    tags: dict[str, Any] = field(default_factory=dict)


class EpochLine(keras.callbacks.Callback):
    """A compact line per epoch, printed above the trials' progress bar."""

    def __init__(self, number: int, epochs: int):
        super().__init__()
        self.number, self.epochs = number, epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "val_loss", "val_accuracy") if k in logs]
        tqdm.write(f"  trial {self.number} epoch {epoch + 1}/{self.epochs}: " + ", ".join(parts))


def trial_values(spec: StudySpec, profile: Profile, params: dict[str, Any]) -> dict[str, Any]:
    """Dotted config values for a trial's params; epoch budgets are scaled by the profile."""
    values = {}
    for name, value in params.items():
        key = spec.space[name].key
        if name == "epochs":
            value = max(1, round(value * profile.epoch_scale))
        values[key] = value
    return values


def run_params(cfg: RunConfig) -> dict[str, Any]:
    """Every hyperparameter of a trial as flat MLflow params (leaf names)."""
    flat = {}
    for value in config_module.to_dict(cfg).values():
        if isinstance(value, dict):
            flat.update(value)
    flat["profile"] = cfg.profile
    return {k: ("" if v is None else v) for k, v in flat.items()}


class TrialRunner:
    """Runs trials of one study on one dataset, recording each in MLflow."""

    def __init__(
        self,
        cfg: RunConfig,
        spec: StudySpec,
        profile: Profile,
        data: LabData,
        tracker: Tracker,
        engine: str,
        models_dir: Path,
    ):
        self.cfg, self.spec, self.profile, self.data = cfg, spec, profile, data
        self.tracker, self.engine = tracker, engine
        self.models_dir = models_dir
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints_root = Path(cfg.runs_dir) / "checkpoints" / spec.name / engine

    def run(
        self,
        number: int,
        params: dict[str, Any],
        extra_callbacks: list[keras.callbacks.Callback] | None = None,
        on_run_started=None,
        on_pruned: type[BaseException] | tuple = (),
    ) -> TrialRecord:
        """Run trial `number` with search-space `params`.

        Raises:
            TrialFailed: infeasible or diverged (the MLflow run is FAILED with the reason).
            on_pruned: re-raised after the run is marked KILLED (pruned).
        """
        cfg = config_module.with_values(self.cfg, trial_values(self.spec, self.profile, params))
        labels = {f"space.{k}": v for k, v in params.items()}
        run_id = self.tracker.start_trial_run(
            number, run_params(cfg) | labels, config_module.to_yaml(cfg), self.engine
        )
        if on_run_started is not None:
            on_run_started(run_id)
        keras.utils.clear_session()
        keras.utils.set_random_seed(cfg.trainer.seed)
        checkpoint_dir = self.checkpoint_dir(params)
        try:
            record = self._fit_and_record(
                number, cfg, run_id, extra_callbacks or [], checkpoint_dir
            )
        except on_pruned:
            self.tracker.end_trial_run(run_id, "PRUNED", "pruned by the study's pruner")
            checkpoint.remove(checkpoint_dir)
            raise
        except (InfeasibleArchitecture, TrainingDiverged) as error:
            reason = f"{type(error).__name__}: {error}"
            self.tracker.end_trial_run(run_id, "FAIL", reason)
            checkpoint.remove(checkpoint_dir)
            raise TrialFailed(reason) from None
        except KeyboardInterrupt:
            # Stopped on purpose (Ctrl-C, SIGTERM): the checkpoint stays for the retry.
            self.tracker.end_trial_run(run_id, "FAIL", "interrupted", status="KILLED")
            raise
        except BaseException as error:  # crashed: never leave the run RUNNING
            self.tracker.end_trial_run(run_id, "FAIL", repr(error))
            raise
        self.tracker.end_trial_run(run_id, "COMPLETE")
        checkpoint.remove(checkpoint_dir)
        return record

    def checkpoint_dir(self, params: dict[str, Any]) -> Path:
        """Where a trial with these values keeps its per-epoch checkpoint: a retry of a killed
        trial has the same values, so it finds the checkpoint and continues from it."""
        key = json.dumps(
            {"study": self.spec.name, "engine": self.engine, **params}, sort_keys=True
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.checkpoints_root / digest

    def _fit_and_record(
        self,
        number: int,
        cfg: RunConfig,
        run_id: str,
        extra_callbacks: list,
        checkpoint_dir: Path,
    ) -> TrialRecord:
        set_precision(cfg.trainer.mixed_precision)
        model = build_model(
            kernel_size=cfg.model.kernel_size,
            padding=cfg.model.padding,
            strides=cfg.model.strides,
            image_size=cfg.data.image_size,
            architecture=cfg.model.architecture,
        )
        self.tracker.log_metrics(run_id, {"num_params": model.count_params()})
        history: dict[str, list[float]] = {}
        resume = checkpoint.load(checkpoint_dir)
        if resume is not None:  # a retried trial: its run shows the epochs done before, too
            history.update({k: list(v) for k, v in resume.history.items()})
            self.tracker.log_history(run_id, resume.history)
            self.tracker.set_tags(run_id, {"resumed_from_epoch": resume.epochs_done})
            del resume

        class _Keep(keras.callbacks.Callback):  # keeps the curve even if pruning stops the fit
            def on_epoch_end(self, epoch, logs=None):
                for key, value in (logs or {}).items():
                    history.setdefault(key, []).append(float(value))

        try:
            result = train(
                model,
                self.data,
                optimizer=cfg.trainer.optimizer,
                learning_rate=cfg.trainer.learning_rate,
                batch_size=cfg.trainer.batch_size,
                epochs=cfg.trainer.epochs,
                patience=cfg.trainer.patience,
                seed=cfg.trainer.seed,
                l_scaling=cfg.data.l_scaling,
                callbacks=[
                    self.tracker.epoch_logger(run_id),
                    _Keep(),
                    EpochLine(number, cfg.trainer.epochs),
                    *extra_callbacks,
                ],
                checkpoint_dir=checkpoint_dir,
                checkpoint_every=cfg.trainer.checkpoint_every,
            )
        finally:
            if history.get("loss"):
                self.tracker.log_figure(
                    run_id, learning_curve_figure(history, f"trial {number}"), "learning_curve.png"
                )
        predicted = predict_lab(model, self.data.val_l, cfg.data.l_scaling)
        truth = lab.join_lab(lab.decode_l(self.data.val_l), lab.decode_ab(self.data.val_ab))
        metrics = colorization_metrics(truth, predicted)
        metrics |= {
            "best_val_loss": result.best_val_loss,
            "best_val_accuracy": result.history["val_accuracy"][result.best_epoch - 1],
            "final_accuracy": result.history["accuracy"][-1],
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
        }
        self.tracker.log_metrics(run_id, metrics)
        tags = {
            "early_stopped": result.stopped_early,
            "early_stopped_epoch": result.epochs_run if result.stopped_early else "",
            "best_epoch": result.best_epoch,
        }
        self.tracker.set_tags(run_id, tags)
        shown = slice(0, min(SAMPLE_PHOTOS, len(truth)))
        gray = lab.decode_l(self.data.val_l[shown])[..., 0] / 100.0
        figure = sample_grid_figure(
            gray, lab.lab_to_rgb(predicted[shown]), lab.lab_to_rgb(truth[shown]), f"trial {number}"
        )
        self.tracker.log_figure(run_id, figure, "samples.png")
        value = result.best_val_loss if self.spec.metric == "val_loss" else None
        if self.spec.metric == "val_accuracy":
            value = metrics["best_val_accuracy"]
        if value is None:
            value = metrics[self.spec.metric]
        model_path = save_model(
            model, self.models_dir / f"trial-{number:03d}.keras", l_scaling=cfg.data.l_scaling
        )
        return TrialRecord(float(value), metrics, run_id, model_path, tags)
