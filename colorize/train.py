"""Training: compile with an optimizer by name, fit with early stopping, report what happened.

Loss is the MSE on a/b / 128. The paper's "accuracy" is Keras' `accuracy` metric on this output:
with two output channels Keras resolves it to categorical accuracy, i.e. the share of pixels where
the larger of the two predicted channels (a or b) is the larger of the true ones. It says little
about colour quality; the colorization metrics in `colorize.metrics` do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from colorize.batches import LabBatches
from colorize.data import LabData

OPTIMIZERS = ("adamax", "adam", "rmsprop")
# The report calls RMSprop "rmse"; accept its spelling so its settings can be rerun as written.
OPTIMIZER_ALIASES = {"rmse": "rmsprop"}


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def resolve_optimizer(name: str) -> str:
    """Canonical optimizer name; raises ValueError listing the allowed names."""
    key = str(name).lower()
    key = OPTIMIZER_ALIASES.get(key, key)
    if key not in OPTIMIZERS:
        allowed = ", ".join(
            OPTIMIZERS + tuple(f"{a} (= {b})" for a, b in OPTIMIZER_ALIASES.items())
        )
        raise ValueError(f"unknown optimizer {name!r}; allowed: {allowed}")
    return key


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The one place optimizers are created from their names."""
    return keras.optimizers.get(
        {"class_name": resolve_optimizer(name), "config": {"learning_rate": float(learning_rate)}}
    )


def compile_model(
    model: keras.Model, optimizer: str = "adamax", learning_rate: float = 1e-3
) -> None:
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate), loss="mse", metrics=["accuracy"]
    )


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to each epoch's logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


@dataclass
class TrainResult:
    """What a fit did.

    Attributes:
        history: per-epoch lists: loss, val_loss, accuracy, val_accuracy, learning_rate.
        epochs_run: epochs actually trained.
        best_epoch: 1-based epoch of the lowest val_loss (its weights are the model's now).
        stopped_early: early stopping ended the fit before the epoch budget.
    """

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool

    @property
    def best_val_loss(self) -> float:
        return float(self.history["val_loss"][self.best_epoch - 1])


def train(
    model: keras.Model,
    data: LabData,
    *,
    optimizer: str = "adamax",
    learning_rate: float = 1e-3,
    batch_size: int = 16,
    epochs: int = 10,
    patience: int = 10,
    seed: int = 0,
    l_scaling: str = "unit",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    initial_epoch: int = 0,
    compile: bool = True,
    verbose: int = 0,
) -> TrainResult:
    """Fit `model` on `data` with early stopping on val_loss (best weights restored).

    Raises:
        TrainingDiverged: the loss became NaN/inf (the fit stops at once).
    """
    keras.utils.set_random_seed(seed)
    if compile:
        compile_model(model, optimizer, learning_rate)
    train_batches = LabBatches(
        data.train_l, data.train_ab, batch_size, l_scaling=l_scaling, shuffle=True, seed=seed
    )
    val_batches = LabBatches(data.val_l, data.val_ab, batch_size, l_scaling=l_scaling)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    fit = model.fit(
        train_batches,
        validation_data=val_batches,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=[LearningRateLogger(), keras.callbacks.TerminateOnNaN(), stopper, *callbacks],
        verbose=verbose,
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    losses = history.get("loss", []) + history.get("val_loss", [])
    if not losses or any(not math.isfinite(v) for v in losses):
        raise TrainingDiverged(
            f"loss became {'NaN' if any(math.isnan(v) for v in losses) else 'infinite'} "
            f"(optimizer {optimizer}, learning rate {learning_rate:g})"
        )
    epochs_run = len(history["val_loss"])
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    return TrainResult(
        history=history,
        epochs_run=epochs_run,
        best_epoch=initial_epoch + best_epoch,
        stopped_early=bool(stopper.stopped_epoch),
    )
