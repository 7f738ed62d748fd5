"""Streams training batches from compact LAB arrays (in memory or memory-mapped).

Only one batch at a time is scaled to float32, so memory does not grow with the dataset.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from colorize import lab


class LabBatches(keras.utils.PyDataset):
    """(scaled L, a/b / 128) float32 batches from uint8 L and int8 a/b arrays.

    Shuffles every epoch with its own seeded generator when `shuffle` is set.
    """

    def __init__(
        self,
        lightness: np.ndarray,
        ab: np.ndarray,
        batch_size: int,
        *,
        l_scaling: str = "unit",
        shuffle: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        if len(lightness) != len(ab):
            raise ValueError("L and a/b arrays differ in length")
        self.lightness, self.ab = lightness, ab
        self.batch_size = max(1, int(batch_size))
        self.l_scaling = lab.check_l_scaling(l_scaling)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(lightness))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return math.ceil(len(self.lightness) / self.batch_size)

    def __getitem__(self, index: int):
        picks = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        inputs = lab.scale_l(lab.decode_l(self.lightness[picks]), self.l_scaling)
        targets = lab.ab_to_target(lab.decode_ab(self.ab[picks]))
        return inputs, targets

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)
