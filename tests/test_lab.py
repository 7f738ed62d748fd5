import numpy as np
import pytest

from colorize import lab

pytestmark = pytest.mark.fast  # the unit tier: `python -m pytest -m fast -n 0`


def test_round_trip_on_real_photos_is_within_one_level(embedded_photos):
    for name, rgb in embedded_photos.items():
        back = lab.lab_to_rgb_uint8(lab.rgb_to_lab(rgb[:128, :128]))
        assert np.abs(back.astype(int) - rgb[:128, :128].astype(int)).max() <= 1, name


def test_compact_encoding_error_is_below_one_lab_unit(embedded_photos):
    converted = lab.rgb_to_lab(embedded_photos["skimage:astronaut"])
    l_err = np.abs(lab.decode_l(lab.encode_l(converted[..., 0])) - converted[..., 0]).max()
    ab_err = np.abs(lab.decode_ab(lab.encode_ab(converted[..., 1:])) - converted[..., 1:]).max()
    assert l_err <= 100 / 255 / 2 + 1e-4
    assert ab_err <= 0.5 + 1e-4


def test_targets_use_the_papers_scaling():
    ab = np.array([[-128.0, 64.0]])
    assert np.allclose(lab.ab_to_target(ab), [[-1.0, 0.5]])
    assert np.allclose(lab.target_to_ab(lab.ab_to_target(ab)), ab)


def test_l_scalings():
    lightness = np.array([0.0, 50.0, 100.0])
    assert np.allclose(lab.scale_l(lightness, "unit"), [0, 0.5, 1])
    assert np.allclose(lab.scale_l(lightness, "centered"), [-1, 0, 1])
    assert np.allclose(lab.scale_l(lightness, "raw"), lightness)
