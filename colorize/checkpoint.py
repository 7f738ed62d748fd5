"""Per-epoch checkpoints, so an interrupted fit continues from its last epoch, not from scratch.

A checkpoint folder holds the fitted model with its optimizer state (`model.keras`: the uint8-input
wrapper of `colorize.train.compact_input_model`, not a model to colorize with), the early-stopping
state with its best weights (`best.weights.npz`) and `state.json` (epochs done, history so far).
Every file is written to a temporary name and renamed, and `state.json` is written last, so a
fit killed while saving leaves the previous checkpoint intact; an unreadable one is ignored.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)
STATE = "state.json"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the saved model, epochs done, history and early-stopping state."""

    model: keras.Model
    epochs_done: int
    history: dict[str, list[float]]
    stopper_state: dict
    best_weights: list[np.ndarray] | None


def _replace(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def save(
    directory: Path,
    model: keras.Model,
    epochs_done: int,
    history: dict[str, list[float]],
    stopper: keras.callbacks.EarlyStopping,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model_tmp = directory / "model.tmp.keras"
    model.save(model_tmp)
    _replace(model_tmp, directory / "model.keras")
    if stopper.best_weights is not None:
        weights_tmp = directory / "best.tmp.npz"
        with open(weights_tmp, "wb") as handle:
            np.savez(handle, *stopper.best_weights)
        _replace(weights_tmp, directory / "best.weights.npz")
    state = {
        "epochs_done": epochs_done,
        "history": history,
        "stopper": {
            "best": float(stopper.best),
            "wait": int(stopper.wait),
            "best_epoch": int(stopper.best_epoch),
        },
        "has_best_weights": stopper.best_weights is not None,
    }
    state_tmp = directory / "state.tmp.json"
    state_tmp.write_text(json.dumps(state))
    _replace(state_tmp, directory / STATE)


def load(directory: Path) -> Checkpoint | None:
    """The checkpoint in `directory`, or None when there is none or it cannot be read."""
    if directory is None or not (directory / STATE).exists():
        return None
    try:
        state = json.loads((directory / STATE).read_text())
        model = keras.saving.load_model(directory / "model.keras", safe_mode=True, compile=True)
        best_weights = None
        if state.get("has_best_weights"):
            with np.load(directory / "best.weights.npz") as saved:
                best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        return Checkpoint(
            model, int(state["epochs_done"]), state["history"], state["stopper"], best_weights
        )
    except (OSError, ValueError, KeyError) as error:
        log.warning("ignoring unreadable checkpoint %s: %s", directory, error)
        return None


def remove(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that can continue with the state (best value, wait, best weights) it had
    when a checkpoint was taken."""

    def __init__(self, *args, resume: Checkpoint | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.resume = resume

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resume is not None:
            state = self.resume.stopper_state
            self.best, self.wait = state["best"], state["wait"]
            self.best_epoch = state["best_epoch"]
            self.best_weights = self.resume.best_weights


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves a checkpoint at the end of an epoch once `min_interval` seconds have passed since the
    last one (0: every epoch), so saving costs little however short the epochs are."""

    def __init__(
        self,
        directory: Path,
        stopper: keras.callbacks.EarlyStopping,
        prior_history: dict[str, list[float]],
        min_interval: float = 0.0,
    ):
        super().__init__()
        self.directory, self.stopper = directory, stopper
        self.history = {k: list(v) for k, v in prior_history.items()}
        self.min_interval = min_interval
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if not math.isfinite(self.history.get("loss", [0.0])[-1]):
            return  # a diverged fit is not worth resuming
        if time.monotonic() - self._last_save >= self.min_interval:
            save(self.directory, self.model, epoch + 1, self.history, self.stopper)
            self._last_save = time.monotonic()
