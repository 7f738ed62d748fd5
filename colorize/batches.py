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


class LabBatches(keras.utils.PyDataset):
    """(uint8 L, int8 [a, b, label]) batches gathered from the compact arrays.

    Shuffles every epoch with its own seeded generator when `shuffle` is set.
    """

    def __init__(
        self,
        lightness: np.ndarray,
        ab: np.ndarray,
        label: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if not len(lightness) == len(ab) == len(label):
            raise ValueError("L, a/b and label arrays differ in length")
        self.lightness, self.ab, self.label = lightness, ab, label
        self.batch_size = max(1, int(batch_size))
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(lightness))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return math.ceil(len(self.lightness) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        # Sorted picks read a memory-mapped cache front to back.
        picks = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        targets = np.concatenate(
            [np.asarray(self.ab[picks]), np.asarray(self.label[picks]).view(np.int8)], axis=-1
        )
        return np.asarray(self.lightness[picks]), targets

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)
