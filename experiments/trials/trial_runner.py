"""One trial, engine-agnostic: values -> config -> model -> fit -> metrics, all recorded in MLflow.

Both engines (Optuna and Keras Tuner) call `TrialRunner.run`; only how values are chosen and how
a trial's end is reported back to the engine differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
from tqdm.auto import tqdm

from colorize import checkpoint, lab
from colorize.datasets import LabData
from colorize.heads import head_of
from colorize.metrics import colorization_metrics
from colorize.model import InfeasibleArchitecture, build_model
from colorize.predict import predict_lab, save_model
from colorize.train import TrainingDiverged, set_precision, train
from experiments.common import records as r
from experiments.common.errors import StudyStopped, TrialFailed, first_line, is_disk_full
from experiments.settings import config as config_module
from experiments.settings.config import Profile, RunConfig
from experiments.settings.study_spec import StudySpec
from experiments.tracking import Tracker, trial_run_name
from experiments.trials import trial_figures as figures

log = logging.getLogger(__name__)
SAMPLE_PHOTOS = 4  # validation photos shown in each trial's sample grid


@dataclass
class TrialRecord:
    """What a finished trial produced: `value` is its first objective's value, `values` every
    objective's (one for most studies)."""

    value: float
    metrics: dict[str, float]
    run_id: str
    model_path: Path | None = None
    tags: dict[str, Any] = field(default_factory=dict)
    values: tuple[float, ...] = ()


class EpochRecorder(keras.callbacks.Callback):
    """Logs each epoch's metrics to the trial's run, keeps them (a pruned fit returns nothing),
    and prints a compact line above the trials' progress bar."""

    def __init__(self, tracker: Tracker, run_id: str, number: int, epochs: int, history: dict):
        super().__init__()
        self.tracker, self.run_id = tracker, run_id
        self.number, self.epochs, self.history = number, epochs, history

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        self.tracker.log_metrics(self.run_id, logs, step=epoch + 1)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
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
    """A trial's MLflow params (leaf names), as the schema chooses them
    (`experiments.settings.config.param_values`); an unset value is logged empty."""
    return {k: ("" if v is None else v) for k, v in config_module.param_values(cfg).items()}


def calls(cfg: RunConfig) -> dict[str, dict[str, Any]]:
    """The keyword arguments of each library call a trial makes, from the schema's `feeds`:
    `build` and `train` with the head's options added to both."""
    arguments = {
        call: config_module.arguments(cfg, call)
        for call in ("precision", "build", "train", "predict", "save")
    }
    head = config_module.arguments(cfg, "head")
    arguments["build"] |= head
    arguments["train"] |= head
    return arguments


class TrialRunner:
    """Runs trials of one study on one dataset, recording each in MLflow.

    Args:
        fingerprint: the study's fingerprint hash; tags each checkpoint, so a checkpoint of
            other settings is never continued from.
    """

    def __init__(
        self,
        cfg: RunConfig,
        spec: StudySpec,
        profile: Profile,
        data: LabData,
        tracker: Tracker,
        models_dir: Path,
        fingerprint: str = "",
    ):
        self.cfg, self.spec, self.profile, self.data = cfg, spec, profile, data
        self.tracker, self.fingerprint = tracker, fingerprint
        self.models_dir = models_dir
        self.models_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoints_root = (
            Path(cfg.runs_dir).expanduser() / "checkpoints" / tracker.study / tracker.engine
        )

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
            TrialFailed: infeasible or diverged, or an unexpected error (`retry` set): the
                MLflow run is FAILED with the reason.
            StudyStopped: a fault no trial can survive (disk full, the MLflow store gone).
            on_pruned: re-raised after the run is marked KILLED (pruned).
        """
        started = time.monotonic()
        cfg = config_module.with_values(self.cfg, trial_values(self.spec, self.profile, params))
        run_id = self.tracker.start_trial_run(
            number, run_params(cfg), params, config_module.to_yaml(cfg)
        )
        if on_run_started is not None:
            on_run_started(run_id)
        tqdm.write(f"  {trial_run_name(number, params)} started")
        keras.utils.clear_session()
        keras.utils.set_random_seed(cfg.trainer.seed)
        checkpoint_dir = self.checkpoint_dir(params)

        def seconds() -> dict[str, str]:
            return {r.TRIAL_SECONDS_TAG: f"{time.monotonic() - started:.1f}"}

        try:
            record = self._fit_and_record(
                number, cfg, run_id, extra_callbacks or [], checkpoint_dir
            )
        except on_pruned:
            self.tracker.set_tags(run_id, seconds())
            self.tracker.end_trial_run(run_id, "PRUNED", "pruned by the study's pruner")
            checkpoint.remove(checkpoint_dir)
            raise
        except (InfeasibleArchitecture, TrainingDiverged) as error:
            reason = f"{type(error).__name__}: {error}"
            self.tracker.set_tags(run_id, seconds())
            self.tracker.end_trial_run(run_id, "FAIL", reason)
            checkpoint.remove(checkpoint_dir)
            raise TrialFailed(reason) from None
        except TrialFailed as error:  # reclaimed by another worker: its retry is queued
            self.tracker.set_tags(run_id, seconds())
            self.tracker.end_trial_run(run_id, "FAIL", str(error))
            raise
        except KeyboardInterrupt:
            # Stopped on purpose (Ctrl-C, SIGTERM): the checkpoint stays for the retry.
            self.tracker.end_trial_run(run_id, "FAIL", "interrupted", status="KILLED")
            raise
        except Exception as error:  # unexpected: fail this trial, never leave its run RUNNING
            raise self._unexpected(run_id, number, error, seconds()) from error
        except BaseException as error:  # the process ends (SystemExit): close the run first
            self.tracker.end_trial_run(run_id, "FAIL", repr(error))
            raise
        self.tracker.set_tags(run_id, seconds())
        self.tracker.end_trial_run(run_id, "COMPLETE")
        checkpoint.remove(checkpoint_dir)
        return record

    def _unexpected(
        self, run_id: str, number: int, error: Exception, tags: dict[str, str]
    ) -> Exception:
        """What an unexpected error in trial `number` becomes: `TrialFailed` (retried by the
        next run; the study goes on) or, where no trial could survive it (disk full, the
        MLflow store gone), `StudyStopped`. The run is closed FAILED with the reason where the
        store still takes it (where not, the next run closes it). The checkpoint stays, for
        the retry."""
        reason = first_line(error)
        store_error = self.tracker.server_gone()  # then closing the run would only wait
        if not store_error:
            try:
                self.tracker.set_tags(run_id, tags)
                self.tracker.end_trial_run(run_id, "FAIL", reason)
            except Exception:  # the store itself failed: said below
                pass
        if is_disk_full(error):
            return StudyStopped(f"trial {number}: {reason} (is the disk full?)")
        store_error = store_error or self.tracker.unreachable()
        if store_error:  # says it all: the error it caused names a request, not the fault
            return StudyStopped(f"trial {number}: {store_error}")
        tqdm.write(f"  trial {number} failed: {reason}; the next run of this command retries it")
        return TrialFailed(reason, retry=True)

    def checkpoint_dir(self, params: dict[str, Any]) -> Path:
        """Where a trial with these values keeps its per-epoch checkpoint: a retry of a killed
        trial has the same values (and settings), so it finds the checkpoint and continues."""
        key = json.dumps({"fingerprint": self.fingerprint, **params}, sort_keys=True)
        return self.checkpoints_root / hashlib.sha256(key.encode()).hexdigest()[:16]

    def _fit(self, number, cfg, model, run_id, callbacks, checkpoint_dir, history):
        try:
            result = train(
                model,
                self.data,
                **calls(cfg)["train"],
                callbacks=[
                    EpochRecorder(self.tracker, run_id, number, cfg.trainer.epochs, history),
                    *callbacks,
                ],
                checkpoint_dir=checkpoint_dir,
                checkpoint_tag=self.fingerprint,
            )
        except BaseException:
            # The curve so far, where the store still takes it: sent to an MLflow server that
            # is gone, it would only hold the stopping study through MLflow's retries.
            if not self.tracker.server_gone():
                self._log_curve(number, model, run_id, history)
            raise
        self._log_curve(number, model, run_id, history)
        return result

    def _log_curve(self, number: int, model, run_id: str, history: dict) -> None:
        if history.get("loss"):
            figure = figures.learning_curve_figure(
                history, f"trial {number}", head_of(model).loss_label
            )
            self.tracker.log_figure(run_id, figure, r.CURVE_ARTIFACT)
            figures.close(figure)

    def _fit_and_record(
        self, number: int, cfg: RunConfig, run_id: str, callbacks: list, checkpoint_dir: Path
    ) -> TrialRecord:
        arguments = calls(cfg)
        set_precision(**arguments["precision"])
        model = build_model(**arguments["build"])
        self.tracker.log_metrics(run_id, {"num_params": model.count_params()})
        history: dict[str, list[float]] = {}
        resume = checkpoint.load(checkpoint_dir, self.fingerprint)
        if resume is not None:  # a retried trial: its run shows the epochs done before, too
            history.update({k: list(v) for k, v in resume.history.items()})
            self.tracker.log_history(run_id, resume.history)
            self.tracker.set_tags(run_id, {r.RESUMED_FROM_TAG: resume.epochs_done})
            del resume
        result = self._fit(number, cfg, model, run_id, callbacks, checkpoint_dir, history)
        predicted = predict_lab(model, self.data.val_l, **arguments["predict"])
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
            r.EARLY_STOPPED_TAG: result.stopped_early,
            r.EARLY_STOPPED_EPOCH_TAG: result.epochs_run if result.stopped_early else "",
            r.BEST_EPOCH_TAG: result.best_epoch,
        }
        self.tracker.set_tags(run_id, tags)
        shown = slice(0, min(SAMPLE_PHOTOS, len(truth)))
        gray = lab.decode_l(self.data.val_l[shown])[..., 0] / 100.0
        figure = figures.sample_grid_figure(
            gray, lab.lab_to_rgb(predicted[shown]), lab.lab_to_rgb(truth[shown]), f"trial {number}"
        )
        self.tracker.log_figure(run_id, figure, r.SAMPLES_ARTIFACT)
        figures.close(figure)
        self.tracker.log_arrays(  # the report sets trials' photos side by side from these
            run_id,
            r.SAMPLE_ARRAYS_ARTIFACT,
            gray=figures.to_uint8(gray),
            predicted=figures.to_uint8(lab.lab_to_rgb(predicted[shown])),
            truth=figures.to_uint8(lab.lab_to_rgb(truth[shown])),
        )
        values = tuple(float(metrics[r.objective_column(m)]) for m in self.spec.metrics)
        model_path = save_model(
            model, self.models_dir / f"trial-{number:03d}.keras", **arguments["save"]
        )
        return TrialRecord(values[0], metrics, run_id, model_path, tags, values)
