"""The a/b bins of the classification head: the grid centres of step 10 in the sRGB gamut."""

import warnings

import numpy as np
from skimage import color

from colorize import gamut


def _round_trips(lab: np.ndarray) -> np.ndarray:
    """In gamut by another road: scikit-image's LAB -> RGB (which clips) -> LAB comes back."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        back = color.rgb2lab(color.lab2rgb(lab))
    return np.abs(back - lab).max(axis=-1) < 1e-4


def test_bins_are_exactly_the_grid_centres_in_gamut_for_some_lightness():
    bins = gamut.bin_centres()
    assert 200 <= len(bins) <= 260
    assert np.all(bins % gamut.GRID_STEP == 0)
    centres = gamut.grid_centres()
    lightness = gamut.lightness_scan()
    lab = np.concatenate(
        [
            np.broadcast_to(lightness[:, None, None], (len(lightness), len(centres), 1)),
            np.broadcast_to(centres, (len(lightness), len(centres), 2)),
        ],
        axis=-1,
    )
    reachable = _round_trips(lab).any(axis=0)
    is_bin = (centres[:, None, :] == bins[None].astype(np.float64)).all(-1).any(-1)
    assert np.array_equal(reachable, is_bin)
    # the grid reaches past the gamut on every side, so no colour is cut off
    assert not is_bin[np.abs(centres).max(axis=-1) == gamut.GRID_LIMIT].any()


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
