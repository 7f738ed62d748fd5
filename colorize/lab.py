"""RGB <-> CIELAB conversion and the network's scaling of L (input) and a/b (target).

Targets are a/b divided by 128 so they fit the network's tanh output; predictions are multiplied
back by 128 (as in the paper). How L is fed to the network is a setting, `l_scaling`:

- ``unit`` (default): L / 100, in [0, 1].
- ``centered``: L / 50 - 1, in [-1, 1].
- ``raw``: L as it is, in [0, 100] (what the paper's code feeds).

Datasets are held compactly (L as uint8, a/b as int8, 3 bytes a pixel; the quantization error is
under 0.2 L units and 0.5 a/b units) and stay so up to the network, which scales them itself
(`compact_l_affine`; `colorize.train.compact_input_model`).

uint8 RGB goes through a fast path (`rgb_uint8_to_lab_fast`, `rgb_uint8_to_compact`): the same
formulas as scikit-image's `rgb2lab` (sRGB, D65, 2 degree observer), with a 256-entry table for
the sRGB transfer, the D65 white folded into the matrix, float32 planes and cache-sized blocks.
It agrees with scikit-image to about 1e-4 LAB units and is several times faster (see
`bench/bench_convert.py`). LAB -> RGB stays with scikit-image.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from skimage import color

from colorize.choices import L_SCALINGS

AB_SCALE = 128.0
_L_TO_UINT8 = 255.0 / 100.0

# --- the fast uint8 path ------------------------------------------------------------------------
# scikit-image's constants: sRGB -> XYZ matrix, D65 white (2 degree observer), f(t) breakpoints.
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_XYZ_FROM_RGB = np.array(  # skimage.color.colorconv.xyz_from_rgb
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)


def _srgb_transfer_table() -> np.ndarray:
    """sRGB -> linear of each of the 256 uint8 levels (computed in float64, kept as float32)."""
    levels = np.arange(256) / 255.0
    linear = np.where(levels > 0.04045, ((levels + 0.055) / 1.055) ** 2.4, levels / 12.92)
    return linear.astype(np.float32)


_SRGB_TO_LINEAR = _srgb_transfer_table()
# XYZ / white in one multiply: rows are x/xn, y/yn, z/zn from linear r, g, b
_WHITE_XYZ_FROM_LINEAR = (_XYZ_FROM_RGB / _D65_WHITE[:, None]).astype(np.float32)
_F_EPSILON = np.float32(0.008856)
_F_SLOPE = np.float32(7.787)
_F_OFFSET = np.float32(16.0 / 116.0)
_BLOCK_PIXELS = 1 << 16  # float32 planes of 256 KB: a block's work stays in a core's L2 cache
_workspaces = (
    threading.local()
)  # per-thread buffers, reused: no allocation (page faults) per block


def _workspace() -> dict[str, np.ndarray]:
    buffers = getattr(_workspaces, "buffers", None)
    if buffers is None:
        buffers = {name: np.empty(_BLOCK_PIXELS, dtype=np.float32) for name in "rgbxyzs"}
        buffers["index"] = np.empty(_BLOCK_PIXELS, dtype=np.intp)
        _workspaces.buffers = buffers
    return buffers


def _lab_f(t: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """CIELAB's f(t) in place: cbrt(t) above the breakpoint, the linear segment below."""
    np.multiply(t, _F_SLOPE, out=scratch)
    scratch += _F_OFFSET
    below = t <= _F_EPSILON
    np.cbrt(t, out=t)
    np.copyto(t, scratch, where=below)
    return t


def _f_planes(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """f(x/xn), f(y/yn), f(z/zn) and a scratch plane, float32, for at most _BLOCK_PIXELS uint8
    pixels (n, 3). The planes are this thread's workspace: use them before the next call."""
    count = len(pixels)
    buffers = {name: buffer[:count] for name, buffer in _workspace().items()}
    index, scratch = buffers["index"], buffers["s"]
    linear = []
    for channel, name in enumerate("rgb"):
        np.copyto(index, pixels[:, channel], casting="unsafe")  # uint8 -> intp: take won't copy
        # mode="clip" skips take's bounds check and buffering (uint8 indices are always in range)
        linear.append(_SRGB_TO_LINEAR.take(index, out=buffers[name], mode="clip"))
    red, green, blue = linear
    planes = []
    for row, name in zip(_WHITE_XYZ_FROM_LINEAR, "xyz", strict=True):
        t = np.multiply(red, row[0], out=buffers[name])
        t += np.multiply(green, row[1], out=scratch)
        t += np.multiply(blue, row[2], out=scratch)
        planes.append(_lab_f(t, scratch))
    return planes[0], planes[1], planes[2], scratch


def _pixels(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB (..., 3), got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb).reshape(-1, 3)


def rgb_uint8_to_lab_fast(rgb: np.ndarray) -> np.ndarray:
    """uint8 sRGB (..., 3) -> float32 LAB (..., 3), within about 1e-4 of scikit-image's rgb2lab.

    Single-threaded; `convert_rgb_batch` runs it on chunks in a thread pool.
    """
    pixels = _pixels(rgb)
    out = np.empty(pixels.shape, dtype=np.float32)
    for start in range(0, len(pixels), _BLOCK_PIXELS):
        fx, fy, fz, value = _f_planes(pixels[start : start + _BLOCK_PIXELS])
        block = out[start : start + _BLOCK_PIXELS]
        np.multiply(fy, np.float32(116.0), out=value)
        block[:, 0] = np.subtract(value, np.float32(16.0), out=value)
        block[:, 1] = np.multiply(np.subtract(fx, fy, out=value), np.float32(500.0), out=value)
        block[:, 2] = np.multiply(np.subtract(fy, fz, out=value), np.float32(200.0), out=value)
    return out.reshape(np.shape(rgb))


def rgb_uint8_to_compact(
    rgb: np.ndarray,
    out_l: np.ndarray | None = None,
    out_ab: np.ndarray | None = None,
    out_label: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 sRGB (..., 3) -> uint8 L (..., 1) and int8 a/b (..., 2), as `encode_l`/`encode_ab`
    of `rgb_uint8_to_lab_fast`, without making the float LAB array.

    `out_l` / `out_ab` (C-contiguous, of those shapes and dtypes) are written in place when given.
    `out_label` (uint8 (..., 1)), when given, receives the paper's accuracy label from the
    unrounded a/b: 1 where b > a, else 0 (`accuracy_label`), which rounding to int8 would change
    for near-neutral pixels.
    """
    pixels = _pixels(rgb)
    shape = np.shape(rgb)[:-1]
    if out_l is None:
        out_l = np.empty(shape + (1,), dtype=np.uint8)
    if out_ab is None:
        out_ab = np.empty(shape + (2,), dtype=np.int8)
    outputs = [out_l, out_ab] + ([out_label] if out_label is not None else [])
    if not all(out.flags.c_contiguous for out in outputs):
        raise ValueError("out_l, out_ab and out_label must be C-contiguous")
    if out_l.size != len(pixels) or out_ab.size != 2 * len(pixels):
        raise ValueError(f"out_l / out_ab do not fit {len(pixels)} pixels")
    flat_l, flat_ab = out_l.reshape(-1), out_ab.reshape(-1, 2)
    flat_label = out_label.reshape(-1) if out_label is not None else None
    for start in range(0, len(pixels), _BLOCK_PIXELS):
        stop = start + _BLOCK_PIXELS
        fx, fy, fz, value = _f_planes(pixels[start:stop])
        a_value = _workspace()["r"][: len(fx)]  # free once the planes are made
        # L * 255/100 = f(y) * 116 * 2.55 - 16 * 2.55, rounded and clipped like encode_l
        np.multiply(fy, np.float32(116.0 * _L_TO_UINT8), out=value)
        value -= np.float32(16.0 * _L_TO_UINT8)
        # clip writes straight into the compact output (unsafe cast of values already rounded)
        np.clip(np.rint(value, out=value), 0, 255, out=flat_l[start:stop], casting="unsafe")
        np.subtract(fx, fy, out=a_value)
        a_value *= np.float32(500.0)
        np.subtract(fy, fz, out=value)
        value *= np.float32(200.0)  # b, unrounded
        if flat_label is not None:
            np.greater(value, a_value, out=flat_label[start:stop], casting="unsafe")
        np.clip(
            np.rint(a_value, out=a_value), -128, 127, out=flat_ab[start:stop, 0], casting="unsafe"
        )
        np.clip(np.rint(value, out=value), -128, 127, out=flat_ab[start:stop, 1], casting="unsafe")
    return out_l, out_ab


def accuracy_label(ab: np.ndarray) -> np.ndarray:
    """The paper's accuracy label of float a/b (..., 2): 1 where b > a, else 0 (uint8 (..., 1)).

    Keras' `accuracy` on two outputs compares argmax over (a, b), first index on ties."""
    ab = np.asarray(ab)
    return (ab[..., 1:2] > ab[..., 0:1]).astype(np.uint8)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert RGB (uint8 in [0, 255] or float in [0, 1]), any leading shape, to float32 LAB.

    uint8 input takes the fast path (`rgb_uint8_to_lab_fast`); float input goes to scikit-image.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        return rgb_uint8_to_lab_fast(rgb)
    return color.rgb2lab(rgb.astype(np.float32, copy=False)).astype(np.float32)


def lab2rgb_quietly(lab: np.ndarray) -> np.ndarray:
    """scikit-image's `lab2rgb` without its warning on out-of-gamut values: a network's a/b
    may well leave the gamut (a classification head, a high learning rate), and the warning
    only says that they were clipped, as every caller here clips them."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Conversion from CIE-LAB", category=UserWarning)
        return color.lab2rgb(lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Convert LAB to RGB float32 in [0, 1] (out-of-gamut values are clipped)."""
    rgb = lab2rgb_quietly(np.asarray(lab, dtype=np.float64))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


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


def compact_l_affine(l_scaling: str = "unit") -> tuple[float, float]:
    """(scale, offset) taking uint8 L straight to the network's input: `uint8 * scale + offset`.

    Equals `scale_l(decode_l(encoded), l_scaling)` in one multiply-add, so it can run on the device.
    """
    to_lightness = 1.0 / _L_TO_UINT8
    if check_l_scaling(l_scaling) == "unit":
        return to_lightness / 100.0, 0.0
    if l_scaling == "centered":
        return to_lightness / 50.0, -1.0
    return to_lightness, 0.0


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


def convert_rgb_batch(
    rgb: np.ndarray,
    chunk: int = 4,
    out_l: np.ndarray | None = None,
    out_ab: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (N, H, W, 3) -> uint8 L (N, H, W, 1) and int8 a/b (N, H, W, 2).

    Chunks of `chunk` photos are converted in a thread pool (numpy releases the GIL) straight to
    the compact form with `rgb_uint8_to_compact`; no float LAB array of the batch is made
    (float RGB in [0, 1] is also accepted and goes through scikit-image).
    `out_l` / `out_ab` (e.g. memory-mapped arrays of those shapes) are filled when given.
    """
    rgb = np.asarray(rgb)
    count = len(rgb)
    if out_l is None:
        out_l = np.empty(rgb.shape[:3] + (1,), dtype=np.uint8)
    if out_ab is None:
        out_ab = np.empty(rgb.shape[:3] + (2,), dtype=np.int8)

    def convert(start: int) -> None:
        stop = start + chunk
        if rgb.dtype == np.uint8:
            rgb_uint8_to_compact(rgb[start:stop], out_l[start:stop], out_ab[start:stop])
        else:  # float RGB in [0, 1]: scikit-image, then encode
            converted = rgb_to_lab(rgb[start:stop])
            out_l[start:stop] = encode_l(converted[..., :1])
            out_ab[start:stop] = encode_ab(converted[..., 1:])

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(convert, range(0, count, chunk)))
    return out_l, out_ab
