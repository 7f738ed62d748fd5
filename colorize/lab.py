"""RGB <-> CIELAB conversion and the network's scaling of L (input) and a/b (target).

Targets are a/b divided by 128 so they fit the network's tanh output; predictions are multiplied
back by 128 (as in the paper). How L is fed to the network is a setting, `l_scaling`:

- ``unit`` (default): L / 100, in [0, 1].
- ``centered``: L / 50 - 1, in [-1, 1].
- ``raw``: L as it is, in [0, 100] (what the paper's code feeds).

Datasets are held compactly (L as uint8, a/b as int8, 3 bytes a pixel) and scaled to float32
per batch; the quantization error is under 0.2 L units and 0.5 a/b units.
"""

from __future__ import annotations

import numpy as np
from skimage import color

AB_SCALE = 128.0
L_SCALINGS = ("unit", "centered", "raw")
_L_TO_UINT8 = 255.0 / 100.0


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert RGB (uint8 in [0, 255] or float in [0, 1]), any leading shape, to float32 LAB."""
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255.0
    return color.rgb2lab(rgb.astype(np.float32, copy=False)).astype(np.float32)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert LAB to RGB float32 in [0, 1] (out-of-gamut values are clipped)."""
    return np.clip(color.lab2rgb(np.asarray(lab, dtype=np.float64)), 0.0, 1.0).astype(np.float32)


def lab_to_rgb_uint8(lab: np.ndarray) -> np.ndarray:
    """Convert LAB to RGB uint8."""
    return np.round(lab_to_rgb(lab) * 255.0).astype(np.uint8)


def check_l_scaling(l_scaling: str) -> str:
    if l_scaling not in L_SCALINGS:
        raise ValueError(f"l_scaling must be one of {', '.join(L_SCALINGS)}, not {l_scaling!r}")
    return l_scaling


def scale_l(lightness: np.ndarray, l_scaling: str = "unit") -> np.ndarray:
    """Scale L in [0, 100] to the network's input range."""
    lightness = np.asarray(lightness, dtype=np.float32)
    check_l_scaling(l_scaling)
    if l_scaling == "unit":
        return lightness / 100.0
    if l_scaling == "centered":
        return lightness / 50.0 - 1.0
    return lightness


def ab_to_target(ab: np.ndarray) -> np.ndarray:
    """a/b in LAB units -> the network's target range (about [-1, 1])."""
    return np.asarray(ab, dtype=np.float32) / AB_SCALE


def target_to_ab(target: np.ndarray) -> np.ndarray:
    """The network's tanh output -> a/b in LAB units."""
    return np.asarray(target, dtype=np.float32) * AB_SCALE


def encode_l(lightness: np.ndarray) -> np.ndarray:
    """L in [0, 100] -> uint8 (compact storage)."""
    return np.clip(np.round(np.asarray(lightness) * _L_TO_UINT8), 0, 255).astype(np.uint8)


def decode_l(encoded: np.ndarray) -> np.ndarray:
    """uint8 L -> float32 L in [0, 100]."""
    return np.asarray(encoded, dtype=np.float32) / _L_TO_UINT8


def encode_ab(ab: np.ndarray) -> np.ndarray:
    """a/b in LAB units -> int8 (compact storage, clipped to [-128, 127])."""
    return np.clip(np.round(np.asarray(ab)), -128, 127).astype(np.int8)


def decode_ab(encoded: np.ndarray) -> np.ndarray:
    """int8 a/b -> float32 a/b in LAB units."""
    return np.asarray(encoded, dtype=np.float32)


def join_lab(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Stack L (..., H, W) or (..., H, W, 1) with a/b (..., H, W, 2) into LAB (..., H, W, 3)."""
    lightness = np.asarray(lightness, dtype=np.float32)
    if lightness.shape[-1] != 1:
        lightness = lightness[..., None]
    return np.concatenate([lightness, np.asarray(ab, dtype=np.float32)], axis=-1)
