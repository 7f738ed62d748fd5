"""The a/b colours a photo can hold, quantized: the bins of the classification head and of the
class-rebalanced metrics (Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016).

The a/b plane is cut into a grid of step `GRID_STEP` (10 LAB units) whose centres are the
multiples of 10. A centre is a bin when its colour lies inside the sRGB gamut for some lightness:
L is scanned from 0 to 100 in steps of `L_STEP`, each (L, a, b) is converted to linear RGB with
scikit-image's LAB -> XYZ and XYZ -> RGB matrix, without clipping, and kept when every channel
lies in [0, 1]. That leaves 229 bins (a from -80 to 90, b from -100 to 90).

Keras-free (numpy and scikit-image only), so metrics and reports use it without a deep-learning
stack.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

GRID_STEP = 10  # LAB units between bin centres (Zhang et al.)
GRID_LIMIT = 120  # the grid spans [-120, 120]^2, past the sRGB gamut on every side
L_STEP = 0.1  # lightness scan step
_GAMUT_TOLERANCE = 1e-9  # float error on linear RGB; the nearest outside centre misses by 1e-2


def _linear_rgb(lab: np.ndarray) -> np.ndarray:
    """Linear sRGB of LAB (..., 3), unclipped (NaN where no real colour has that LAB)."""
    from skimage import color
    from skimage.color import colorconv

    lab = np.asarray(lab, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lab2xyz warns of (and zeroes) negative Z
        xyz = color.lab2xyz(lab)
    linear = xyz @ colorconv.rgb_from_xyz.T
    # lab2xyz zeroes a negative Z, which no sRGB colour has: mark those colours as outside.
    negative_z = (lab[..., 0] + 16.0) / 116.0 - lab[..., 2] / 200.0 < 0
    linear[negative_z] = np.nan
    return linear


def in_gamut(lab: np.ndarray) -> np.ndarray:
    """Whether each LAB colour (..., 3) is an sRGB colour (every channel in [0, 1], unclipped)."""
    linear = _linear_rgb(lab)
    with np.errstate(invalid="ignore"):
        inside = (linear >= -_GAMUT_TOLERANCE) & (linear <= 1 + _GAMUT_TOLERANCE)
    return np.all(inside, axis=-1)


def grid_centres() -> np.ndarray:
    """Every centre of the a/b grid (float64 (n, 2)), a-major."""
    axis = np.arange(-GRID_LIMIT, GRID_LIMIT + 1, GRID_STEP, dtype=np.float64)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=-1)


def lightness_scan() -> np.ndarray:
    return np.linspace(0.0, 100.0, int(round(100 / L_STEP)) + 1)


@functools.lru_cache(maxsize=1)
def _bins() -> np.ndarray:
    centres = grid_centres()
    reachable = np.zeros(len(centres), dtype=bool)
    for lightness in lightness_scan():
        lab = np.concatenate([np.full((len(centres), 1), lightness), centres], axis=-1)
        reachable |= in_gamut(lab)
    found = centres[reachable].astype(np.float32)
    found.setflags(write=False)
    return found


def bin_centres() -> np.ndarray:
    """The a/b bin centres (float32 (Q, 2), read-only): grid centres in gamut for some L."""
    return _bins()


@functools.lru_cache(maxsize=1)
def _nearest_table() -> np.ndarray:
    """The nearest bin of every integer a/b in [-128, 127]^2 (int16 (256, 256)), row by row of a
    so no (65536, Q) distance array is ever held."""
    values = np.arange(-128, 128, dtype=np.float32)
    centres = bin_centres()
    table = np.empty((256, 256), dtype=np.int16)
    for row, a in enumerate(values):
        distances = (a - centres[None, :, 0]) ** 2 + (values[:, None] - centres[None, :, 1]) ** 2
        table[row] = np.argmin(distances, axis=-1)
    table.setflags(write=False)
    return table


def nearest_bin(ab: np.ndarray) -> np.ndarray:
    """Index of the nearest bin centre of each a/b (..., 2), after rounding a/b to integers in
    [-128, 127] (what int8 storage holds); int (...)."""
    index = np.clip(np.rint(np.asarray(ab, dtype=np.float32)), -128, 127).astype(np.int64) + 128
    return _nearest_table()[index[..., 0], index[..., 1]].astype(np.int64)


def bin_counts(ab: np.ndarray, chunk_pixels: int = 1 << 22) -> np.ndarray:
    """How many a/b values (N, ..., 2) fall nearest to each bin (int64 (Q,)); reads `ab` (e.g. a
    memory-mapped view) a block of leading rows at a time, never whole."""
    ab = np.asarray(ab)
    if ab.ndim < 2:
        ab = ab.reshape(1, -1)
    counts = np.zeros(len(bin_centres()), dtype=np.int64)
    rows = max(1, chunk_pixels // max(1, ab[:1].size // 2))
    for start in range(0, len(ab), rows):
        block = nearest_bin(ab[start : start + rows]).ravel()
        counts += np.bincount(block, minlength=len(counts))
    return counts


def bin_distribution(ab: np.ndarray) -> np.ndarray:
    """The empirical distribution of a/b values over the bins (float64 (Q,), sums to 1)."""
    counts = bin_counts(ab)
    total = counts.sum()
    if not total:
        raise ValueError("no a/b values to take a bin distribution of")
    return counts / total
