"""The a/b bins of the classification head: the grid centres of step 10 in the sRGB gamut."""

import warnings

import numpy as np
import pytest
from skimage import color

from colorize import gamut

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def _round_trips(lab: np.ndarray) -> np.ndarray:
    """In gamut by another road: scikit-image's LAB -> RGB (which clips) -> LAB comes back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = color.rgb2lab(color.lab2rgb(lab))
    return np.abs(back - lab).max(axis=-1) < 1e-4


def test_bins_are_exactly_the_grid_centres_in_gamut_for_some_lightness():
    """The expectation is built apart from `colorize.gamut`: its own grid (multiples of 10 from
    -120 to 120), a lightness scan twice as fine (every 0.05), and gamut judged by a round trip
    through scikit-image instead of the linear-RGB bounds the code checks."""
    bins = gamut.bin_centres()
    a, b = np.mgrid[-120:121:10, -120:121:10]
    centres = np.stack([a.ravel(), b.ravel()], axis=-1).astype(np.float64)
    lightness = np.arange(0.0, 100.0 + 1e-9, 0.05)
    lab = np.concatenate(
        [
            np.broadcast_to(lightness[:, None, None], (len(lightness), len(centres), 1)),
            np.broadcast_to(centres, (len(lightness), len(centres), 2)),
        ],
        axis=-1,
    )
    reachable = centres[_round_trips(lab).any(axis=0)]
    assert sorted(map(tuple, bins.tolist())) == sorted(map(tuple, reachable.tolist()))
    # the count and ranges the module documents (and the classification head is sized by)
    assert len(bins) == 229
    assert (bins[:, 0].min(), bins[:, 0].max()) == (-80, 90)
    assert (bins[:, 1].min(), bins[:, 1].max()) == (-100, 90)
    # the grid reaches past the gamut on every side, so no colour is cut off
    assert np.abs(bins).max() < 120


def test_nearest_bin_and_the_bin_distribution():
    bins = gamut.bin_centres()
    ab = np.array([[0, 0], [4, -3], [bins[7][0] + 2, bins[7][1] - 4], [-128, 127]], np.int8)
    nearest = gamut.nearest_bin(ab)
    assert nearest[0] == nearest[1] and tuple(bins[nearest[0]]) == (0, 0)
    assert nearest[2] == 7
    far = ((bins - ab[3].astype(np.float32)) ** 2).sum(-1)
    assert far[nearest[3]] == far.min()
    stacked = np.broadcast_to(ab, (5, 6, 4, 2))
    distribution = gamut.bin_distribution(stacked)
    assert np.isclose(distribution.sum(), 1) and np.isclose(distribution[nearest[0]], 0.5)
    assert np.array_equal(gamut.bin_counts(stacked, chunk_pixels=7), gamut.bin_counts(stacked))
