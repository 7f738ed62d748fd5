"""Training: compile with an optimizer by name, fit with early stopping, report what happened.

The loss is the model's head's (`colorize.heads`): by default (`mse`, the paper's) the MSE on
a/b / 128; `classification` fits bin logits with a class-rebalanced cross-entropy (its weights
from the training a/b, mixed with uniform ones by `rebalance`). The paper's "accuracy" is Keras'
`accuracy` metric on the a/b output: with two output channels Keras resolves it to categorical
accuracy, i.e. the share of pixels where the larger of the two predicted channels (a or b) is the
larger of the true ones (for a classification model, of its decoded a/b). Here it is computed
against labels taken from the unrounded a/b (`label_accuracy`), so storing a/b as int8 changes no
label. It says little about colour quality; `colorize.metrics` does.

The fit feeds compact batches (uint8 L, int8 a/b and label) to a wrapper that scales them on the
device; XLA compilation is Keras' default choice per backend (on for JAX and for TensorFlow on a
GPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from colorize import checkpoint, lab
from colorize.batches import LabBatches, even_batch_size
from colorize.choices import resolve_optimizer
from colorize.datasets import LabData
from colorize.heads import check_options, get_head, head_of
from colorize.heads.regression import compact_target_mse, label_accuracy

__all__ = [  # the paper's loss and accuracy live with their head; importable from here as before
    "EpochCheck",
    "TrainResult",
    "TrainingDiverged",
    "compact_input_model",
    "compact_target_mse",
    "compile_model",
    "label_accuracy",
    "make_optimizer",
    "set_precision",
    "train",
]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The one place optimizers are created from their names."""
    return keras.optimizers.get(
        {"class_name": resolve_optimizer(name), "config": {"learning_rate": float(learning_rate)}}
    )


def set_precision(mixed: bool) -> None:
    """Mixed bfloat16 compute (float32 weights) for models built from now on, or plain float32.

    bfloat16 keeps float32's range, so no loss scaling is needed; it pays on GPUs and TPUs.
    """
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if mixed else "float32")


def compact_input_model(model: keras.Model, l_scaling: str = "unit") -> keras.Model:
    """`model` behind a uint8-L input that it scales itself; the two share their weights.

    This is the model that is fitted: batches cross to the device compact and are scaled there,
    in float32 (what `model` then casts to its compute dtype, as it would a float32 input).
    """
    scale, offset = lab.compact_l_affine(l_scaling)
    inputs = keras.Input(shape=model.inputs[0].shape[1:], dtype="uint8", name="l_uint8")
    scaled = keras.layers.Rescaling(scale, offset, dtype="float32", name="scale_l")(inputs)
    return keras.Model(inputs, model(scaled), name=f"{model.name}_compact")


def compile_model(
    model: keras.Model,
    optimizer: str = "adamax",
    learning_rate: float = 1e-3,
    *,
    loss=None,
    metrics=None,
) -> None:
    """Compile a `compact_input_model` for int8 [a, b, label] targets, with a head's loss and
    metrics (`colorize.heads`); by default the paper's: MSE and `label_accuracy`."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate),
        loss=compact_target_mse if loss is None else loss,
        metrics=(
            [keras.metrics.MeanMetricWrapper(label_accuracy, name="accuracy")]
            if metrics is None
            else list(metrics)
        ),
    )


class StopOnNonFinite(keras.callbacks.Callback):
    """Ends the fit after an epoch whose loss is NaN or infinite.

    Checked per epoch, not per batch like `keras.callbacks.TerminateOnNaN`: a per-batch hook makes
    Keras read the loss back after every step, a host-device sync that stalls a GPU.
    """

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite(float((logs or {}).get("loss", 0.0))):
            self.model.stop_training = True


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to each epoch's logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class EpochCheck(keras.callbacks.Callback):
    """Calls `check()` at the end of each epoch: an exception it raises ends the fit (e.g. a
    trial another worker has taken back)."""

    def __init__(self, check):
        super().__init__()
        self.check = check

    def on_epoch_end(self, epoch, logs=None):
        self.check()


@dataclass
class TrainResult:
    """What a fit did.

    Attributes:
        history: per-epoch lists: loss, val_loss, accuracy, val_accuracy, learning_rate.
        epochs_run: epochs actually trained.
        best_epoch: 1-based epoch of the lowest val_loss (its weights are the model's now).
        stopped_early: early stopping ended the fit before the epoch budget.
        resumed_from_epoch: epochs taken from a checkpoint (0 for a fresh fit).
    """

    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    resumed_from_epoch: int = 0

    @property
    def best_val_loss(self) -> float:
        return float(self.history["val_loss"][self.best_epoch - 1])


def _continue_from(fitted: keras.Model, resume) -> tuple[int, dict]:
    """Load a checkpoint's weights and optimizer state into `fitted`; returns (the epoch to
    start from, the history so far): (0, {}) without one."""
    if resume is None:
        return 0, {}
    fitted.set_weights(resume.model.get_weights())
    fitted.optimizer.build(fitted.trainable_variables)
    for variable, saved in zip(
        fitted.optimizer.variables, resume.model.optimizer.variables, strict=True
    ):
        variable.assign(saved)
    return resume.epochs_done, resume.history


def _check_finite(history: dict[str, list[float]], settings: str) -> None:
    """Raise TrainingDiverged where a training or validation loss is not finite."""
    losses = history.get("loss", []) + history.get("val_loss", [])
    if not losses or any(not math.isfinite(v) for v in losses):
        raise TrainingDiverged(
            f"loss became {'NaN' if any(math.isnan(v) for v in losses) else 'infinite'} "
            f"({settings})"
        )


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
    checkpoint_dir: Path | None = None,
    checkpoint_every: float = 0.0,
    checkpoint_tag: str | None = None,
    run_eagerly: bool = False,
    verbose: int = 0,
    loss: str | None = None,
    **head_options: float,
) -> TrainResult:
    """Fit `model` on `data` with early stopping on val_loss (best weights restored).

    The fit runs on `compact_input_model` of the head's training network (for `mse`, `model`
    itself; for `classification`, `model` up to its bin logits), which shares `model`'s weights.

    `loss` names the head `model` was built with (`build_model(loss=...)`); None takes it from
    the model. `head_options` (`colorize.heads.HEAD_OPTIONS`) go to the head's loss, which takes
    its own: e.g. `rebalance`, the classification head's lambda, the share of the uniform
    distribution in its class rebalancing weights (1: no rebalancing; 0: full inverse frequency
    of the training data's a/b bins); the `mse` head takes none.

    With `checkpoint_dir`, a checkpoint is saved at the end of an epoch once `checkpoint_every`
    seconds have passed since the last (0: every epoch) and, when one is there already, the fit
    continues from it: weights, optimizer state, epoch, history and early-stopping state. The
    result's history covers all epochs. `checkpoint_tag` is saved with each checkpoint, and a
    checkpoint saved under another tag is never continued from (e.g. a study's fingerprint).
    `run_eagerly` runs each step in Python without tracing a graph: seconds sooner for a tiny
    smoke fit, much slower for real ones.

    Raises:
        TrainingDiverged: the loss became NaN/inf (the fit stops at the end of that epoch).
        ValueError: `loss` is not the head `model` was built with.
        TypeError: an option no head declares.
    """
    check_options(head_options)
    keras.utils.set_random_seed(seed)
    head = head_of(model)
    if loss is not None and get_head(loss) is not head:
        raise ValueError(f"model {model.name} was built for loss {head.name!r}, not {loss!r}")
    fitted = compact_input_model(head.training_model(model), l_scaling)
    compile_model(
        fitted,
        optimizer,
        learning_rate,
        loss=head.loss(data.train_ab, **head_options),
        metrics=head.metrics(model),
    )
    fitted.run_eagerly = run_eagerly
    resume = checkpoint.load(checkpoint_dir, checkpoint_tag) if checkpoint_dir else None
    initial_epoch, prior = _continue_from(fitted, resume)
    train_batches = LabBatches(
        data.train_l, data.train_target, batch_size, shuffle=True, seed=seed
    )
    val_size = even_batch_size(len(data.val_l), batch_size)
    val_batches = LabBatches(data.val_l, data.val_target, val_size)
    stopper = checkpoint.ResumableEarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True, resume=resume
    )
    callbacks = [LearningRateLogger(), StopOnNonFinite(), stopper, *callbacks]
    if checkpoint_dir is not None:
        callbacks.append(
            checkpoint.EpochCheckpoint(
                checkpoint_dir, stopper, prior, checkpoint_every, checkpoint_tag
            )
        )
    fit = fitted.fit(
        train_batches,
        validation_data=val_batches,
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    history = {key: list(prior.get(key, [])) for key in prior}
    for key, values in fit.history.items():
        history.setdefault(key, []).extend(float(v) for v in values)
    _check_finite(history, f"optimizer {optimizer}, learning rate {learning_rate:g}")
    epochs_run = len(history["val_loss"])
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    return TrainResult(
        history=history,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        resumed_from_epoch=initial_epoch,
        stopped_early=bool(stopper.stopped_epoch),
    )
