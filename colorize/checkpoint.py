"""Per-epoch checkpoints, so an interrupted fit continues from its last epoch, not from scratch.

A checkpoint folder holds the fitted model with its optimizer state (`model-<epoch>.keras`: the
uint8-input wrapper of `colorize.train.compact_input_model` around the head's training network,
with the head's loss, not a model to colorize with), the
early-stopping state's best weights (`best-<epoch>.npz`) and `state.json` (epochs done, history
so far, which files belong to it, and the caller's tag, e.g. a study's fingerprint).

`state.json` is the one commit point: a new checkpoint's files are written beside the previous
ones, synced, and only then does a rename of `state.json` switch to them. A fit killed while
saving, or a full disk, leaves the previous checkpoint whole and in use; a failed save is a
warning, not the end of the fit. A checkpoint whose tag differs from the one asked for is
ignored, never trusted; one that cannot be read is removed, and the fit starts over.
"""

from __future__ import annotations

import contextlib
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
LEGACY_FILES = {"model": "model.keras", "best": "best.weights.npz"}  # before per-epoch names


@dataclass
class Checkpoint:
    """A loaded checkpoint: the saved model, epochs done, history and early-stopping state."""

    model: keras.Model
    epochs_done: int
    history: dict[str, list[float]]
    stopper_state: dict
    best_weights: list[np.ndarray] | None


def _synced(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _write_files(directory: Path, model, epochs_done: int, best_weights) -> dict[str, str | None]:
    """Write the model (and best weights) of epoch `epochs_done` under new names; returns them."""
    names = {"model": f"model-{epochs_done:04d}.keras", "best": None}
    temp_model = directory / f".tmp-{names['model']}"
    model.save(temp_model)
    _synced(temp_model)
    os.replace(temp_model, directory / names["model"])
    if best_weights is not None:
        names["best"] = f"best-{epochs_done:04d}.npz"
        temp_best = directory / f".tmp-{names['best']}"
        with open(temp_best, "wb") as handle:
            np.savez(handle, *best_weights)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_best, directory / names["best"])
    return names


def save(
    directory: Path,
    model: keras.Model,
    epochs_done: int,
    history: dict[str, list[float]],
    stopper: keras.callbacks.EarlyStopping,
    tag: str | None = None,
) -> bool:
    """Save a checkpoint after `epochs_done` epochs; returns False (with a warning) when it
    could not be written, in which case the previous checkpoint is still the one in use."""
    directory.mkdir(parents=True, exist_ok=True)
    try:
        names = _write_files(directory, model, epochs_done, stopper.best_weights)
        state = {
            "epochs_done": epochs_done,
            "history": history,
            "stopper": {
                "best": float(stopper.best),
                "wait": int(stopper.wait),
                "best_epoch": int(stopper.best_epoch),
            },
            "files": names,
            "tag": tag,
        }
        temp_state = directory / f".tmp-{STATE}"
        with open(temp_state, "w") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_state, directory / STATE)  # the switch
    except OSError as error:  # a full disk, a file size limit, a vanished folder
        log.warning(
            "checkpoint after epoch %d not written (%s); the previous one stays in use",
            epochs_done,
            error,
        )
        _remove_unreferenced(directory)
        return False
    _remove_unreferenced(directory)
    return True


def _referenced(directory: Path) -> set[str]:
    try:
        state = json.loads((directory / STATE).read_text())
    except (OSError, ValueError):
        return set()
    return {name for name in state.get("files", LEGACY_FILES).values() if name} | {STATE}


def _remove_unreferenced(directory: Path) -> None:
    """Drop files of older or half-written checkpoints (never those `state.json` names)."""
    keep = _referenced(directory)
    for path in directory.iterdir():
        if path.name not in keep:
            with contextlib.suppress(OSError):
                path.unlink()


def _read_state(directory: Path) -> dict:
    """`state.json`, checked for the fields a resumed fit reads.

    Raises:
        ValueError: it is not a checkpoint's state (cut short, written over, other fields).
    """
    state = json.loads((directory / STATE).read_text())
    if not isinstance(state, dict):
        raise ValueError(f"{STATE} holds no checkpoint state")
    history, stopper = state.get("history"), state.get("stopper")
    files = state.setdefault("files", LEGACY_FILES)
    if not (
        isinstance(state.get("epochs_done"), int)
        and isinstance(history, dict)
        and all(isinstance(values, list) for values in history.values())
        and isinstance(stopper, dict)
        and {"best", "wait", "best_epoch"} <= set(stopper)
        and isinstance(files, dict)
        and isinstance(files.get("model"), str)
    ):
        raise ValueError(f"{STATE} lacks the fields of a checkpoint")
    return state


def load(directory: Path | None, tag: str | None = None) -> Checkpoint | None:
    """The checkpoint in `directory`, or None when there is none, it cannot be read, or (with
    `tag`) it was saved under another tag. One that cannot be read (a damaged file: cut short,
    bits flipped, written over) is removed, with a warning: the fit starts over."""
    if directory is None or not (directory / STATE).exists():
        return None
    try:
        state = _read_state(directory)
        if tag is not None and state.get("tag") != tag:
            log.warning("ignoring checkpoint %s: saved under other settings", directory)
            return None
        files = state["files"]
        model = keras.saving.load_model(directory / files["model"], safe_mode=True, compile=True)
        best_weights = None
        if files.get("best") and state.get("has_best_weights", True):
            with np.load(directory / files["best"], allow_pickle=False) as saved:
                best_weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        return Checkpoint(
            model, state["epochs_done"], state["history"], state["stopper"], best_weights
        )
    except Exception as error:  # zip, HDF5, JSON and Keras each fail in their own way
        log.warning(
            "ignoring unreadable checkpoint %s (%s: %s); the fit starts over",
            directory,
            type(error).__name__,
            str(error).splitlines()[0][:300] if str(error) else "",
        )
        remove(directory)
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
        tag: str | None = None,
    ):
        super().__init__()
        self.directory, self.stopper, self.tag = directory, stopper, tag
        self.history = {k: list(v) for k, v in prior_history.items()}
        self.min_interval = min_interval
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if not math.isfinite(self.history.get("loss", [0.0])[-1]):
            return  # a diverged fit is not worth resuming
        if time.monotonic() - self._last_save >= self.min_interval:
            save(self.directory, self.model, epoch + 1, self.history, self.stopper, self.tag)
            self._last_save = time.monotonic()
