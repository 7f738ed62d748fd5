"""The fast uint8 sRGB -> LAB path agrees with scikit-image and encodes like encode_l/encode_ab."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import color

from colorize import lab
from colorize.datasets.augment import random_crops
from colorize.lab import convert_rgb_batch

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


@pytest.fixture(scope="module")
def crops(embedded_photos) -> np.ndarray:
    """Crops (with flips) of every embedded photo, as the datasets make them."""
    rng = np.random.default_rng(0)
    return np.stack(
        [
            crop
            for name in sorted(embedded_photos)
            for crop in random_crops(embedded_photos[name], 64, 3, rng)
        ]
    )


def skimage_lab(rgb: np.ndarray) -> np.ndarray:
    """The report's conversion: scikit-image on float input in [0, 1]."""
    return color.rgb2lab(rgb / 255.0)


def test_fast_lab_is_within_a_thousandth_of_scikit_image_on_real_photos(crops):
    deviation = np.abs(lab.rgb_uint8_to_lab_fast(crops) - skimage_lab(crops)).max(axis=(0, 1, 2))
    assert deviation.max() < 1e-3, deviation  # the target is 0.5; float32 gives about 1e-4


def test_fast_lab_matches_scikit_image_over_the_whole_rgb_cube():
    levels = np.r_[np.arange(0, 256, 5), 1, 2, 3, 10, 11, 254].astype(np.uint8)  # incl. darks
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    assert np.abs(lab.rgb_uint8_to_lab_fast(cube) - skimage_lab(cube)).max() < 1e-3


def test_rgb_to_lab_takes_the_fast_path_for_uint8_and_agrees_with_float_input(crops):
    from_uint8 = lab.rgb_to_lab(crops[:4])
    from_float = lab.rgb_to_lab(crops[:4].astype(np.float32) / 255.0)
    assert from_uint8.dtype == np.float32 and from_uint8.shape == crops[:4].shape
    assert np.abs(from_uint8 - from_float).max() < 1e-3


def test_fast_lab_accepts_any_leading_shape_and_non_contiguous_views(crops):
    flipped = crops[:3, :, ::-1]  # a view, as random_crops' flips are
    assert np.array_equal(
        lab.rgb_uint8_to_lab_fast(flipped), lab.rgb_uint8_to_lab_fast(flipped.copy())
    )
    single = lab.rgb_uint8_to_lab_fast(crops[0, 0, 0])
    assert single.shape == (3,)


def test_fast_lab_rejects_what_is_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8 RGB"):
        lab.rgb_uint8_to_lab_fast(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        lab.rgb_uint8_to_compact(np.zeros((4, 4, 4), dtype=np.uint8))


def test_compact_output_is_encode_of_the_fast_lab(crops):
    converted = lab.rgb_uint8_to_lab_fast(crops)
    lightness, ab = lab.rgb_uint8_to_compact(crops)
    assert lightness.dtype == np.uint8 and lightness.shape == crops.shape[:3] + (1,)
    assert ab.dtype == np.int8 and ab.shape == crops.shape[:3] + (2,)
    # identical but for float rounding at exact .5 boundaries (one level, very rare)
    l_diff = np.abs(lightness.astype(int) - lab.encode_l(converted[..., :1]))
    ab_diff = np.abs(ab.astype(int) - lab.encode_ab(converted[..., 1:]))
    assert l_diff.max() <= 1 and ab_diff.max() <= 1
    assert (l_diff > 0).mean() < 1e-4 and (ab_diff > 0).mean() < 1e-4


def test_compact_quantization_stays_under_half_a_lab_unit_of_scikit_image(crops):
    truth = skimage_lab(crops)
    lightness, ab = lab.rgb_uint8_to_compact(crops)
    assert np.abs(lab.decode_l(lightness) - truth[..., :1]).max() <= 100 / 255 / 2 + 1e-3
    assert np.abs(lab.decode_ab(ab) - truth[..., 1:]).max() <= 0.5 + 1e-3


def test_batch_conversion_in_chunks_fills_given_outputs(crops):
    expected_l, expected_ab = lab.rgb_uint8_to_compact(crops)
    out_l = np.zeros(crops.shape[:3] + (1,), dtype=np.uint8)
    out_ab = np.zeros(crops.shape[:3] + (2,), dtype=np.int8)
    got_l, got_ab = convert_rgb_batch(crops, chunk=5, out_l=out_l, out_ab=out_ab)  # 5 ∤ N
    assert got_l is out_l and got_ab is out_ab
    assert np.array_equal(out_l, expected_l) and np.array_equal(out_ab, expected_ab)


def test_batch_conversion_still_takes_float_rgb(crops):
    from_float = convert_rgb_batch(crops[:4].astype(np.float64) / 255.0)
    from_uint8 = convert_rgb_batch(crops[:4])
    for a, b in zip(from_float, from_uint8, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
