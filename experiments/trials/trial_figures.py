"""The figures each trial logs: its learning curve, and validation photos as gray input |
predicted | truth. Drawn with matplotlib (Agg); the caller logs and then closes them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def close(figure) -> None:
    plt.close(figure)


def learning_curve_figure(history: dict[str, list[float]], title: str, loss_label: str):
    """Loss and accuracy per epoch (training solid, validation dashed); `loss_label`: what the
    loss measures (the head's `loss_label`)."""
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for axis, keys in (
        (loss_axis, ("loss", "val_loss")),
        (acc_axis, ("accuracy", "val_accuracy")),
    ):
        for key, style in zip(keys, ("-", "--"), strict=True):
            if key in history:
                axis.plot(epochs[: len(history[key])], history[key], style, label=key)
        axis.legend()
    loss_axis.set(xlabel="epoch", ylabel=loss_label, title=title)
    acc_axis.set(xlabel="epoch", ylabel="accuracy (Keras)")
    figure.tight_layout()
    return figure


def sample_grid_figure(gray: np.ndarray, predicted: np.ndarray, truth: np.ndarray, title: str):
    """Rows of validation photos: gray input | predicted | truth (RGB in [0, 1])."""
    return strip_figure([("gray input", gray), ("predicted", predicted), ("truth", truth)], title)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [0, 1] as 8-bit."""
    return np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)


def strip_figure(columns: list[tuple[str, np.ndarray]], title: str):
    """Rows of photos, one column per (label, images): gray images (N, H, W) or RGB in [0, 1]
    (N, H, W, 3), the same photos in every column."""
    rows, count = len(columns[0][1]), len(columns)
    figure, axes = plt.subplots(rows, count, figsize=(2 * count, 2 * rows), squeeze=False)
    for row in range(rows):
        for column, (label, images) in enumerate(columns):
            image = np.asarray(images[row])
            image = image / 255.0 if image.dtype == np.uint8 else image
            axis = axes[row][column]
            axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(label, fontsize=9)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
