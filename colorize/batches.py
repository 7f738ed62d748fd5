"""Streams training batches from compact LAB arrays (in memory or memory-mapped).

Batches stay compact: uint8 L in, int8 targets out (a, b and the exact accuracy label as a third
channel): 4 bytes a pixel against 12 as float32. The model scales them on the device
(`colorize.train.compact_input_model`), so feeding a GPU is not bound by the host-to-device
copy, and memory does not grow with the dataset.
"""

from __future__ import annotations

import math

import keras
import numpy as np


def even_batch_size(count: int, batch_size: int) -> int:
    """The largest batch size up to `batch_size` that splits `count` evenly, when one of at
    least half of it does; else `batch_size`. Used for validation, which must see each crop
    exactly once: batches of one shape are traced once, not twice (the last, smaller one)."""
    for size in range(min(batch_size, count), max(1, batch_size // 2) - 1, -1):
        if size and count % size == 0:
            return size
    return batch_size


class LabBatches(keras.utils.PyDataset):
    """(uint8 L, int8 [a, b, label]) batches gathered from the compact arrays (one gather each).

    With `shuffle` (training), the order is reshuffled every epoch by its own seeded generator
    and the last batch is filled up from the start of the order, so every batch has one shape:
    a compiled training step is traced once per model, not again for a smaller last batch.
    """

    def __init__(
        self,
        lightness: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if len(lightness) != len(targets):
            raise ValueError("L and target arrays differ in length")
        self.lightness, self.targets = lightness, targets
        self.batch_size = max(1, int(batch_size))
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(lightness))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return math.ceil(len(self.lightness) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        picks = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.shuffle and len(picks) < self.batch_size <= len(self._order):
            picks = np.concatenate([picks, self._order[: self.batch_size - len(picks)]])
        picks = np.sort(picks)  # sorted picks read a memory-mapped cache front to back
        return np.asarray(self.lightness[picks]), np.asarray(self.targets[picks])

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)
