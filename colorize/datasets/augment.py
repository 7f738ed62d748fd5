"""Seeded crops of a photo, with the augmentation of the paper's era (Keras' ImageDataGenerator:
random zoom and position, small rotations, horizontal flips).

Every transform is geometric and applied to the RGB photo before conversion, so L and a/b always
move together. Each photo draws from its own generator, seeded from the dataset seed and the
photo's content, so its crops do not depend on which other photos are in the folder or on the
order they are read in.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

MAX_ROTATION = 10.0  # degrees either way
ROTATION_SHARE = 0.5  # share of training crops that are rotated


def photo_rng(seed: int, digest: str) -> np.random.Generator:
    """The generator of one photo's crops."""
    return np.random.default_rng([int(seed), int(digest[:16] or "0", 16)])


def working_copy(rgb: np.ndarray, size: int) -> np.ndarray:
    """The photo downscaled so its shorter side is at most 2 x `size`: a crop of half the
    shorter side still has `size` pixels, and every later step works on a small image."""
    shorter = min(rgb.shape[:2])
    if shorter <= 2 * size:
        return rgb
    scale = 2 * size / shorter
    width, height = round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)
    image = Image.fromarray(rgb).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _resize(rgb: np.ndarray, size: int) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def _rotated_crop(rgb: np.ndarray, top: int, left: int, side: int, margin: int, angle: float):
    """The `side` square at (top, left) rotated by `angle` about its centre; the `margin` of
    photo around it fills the corners, so no blank pixels come in."""
    region = rgb[top - margin : top + side + margin, left - margin : left + side + margin]
    rotated = Image.fromarray(np.ascontiguousarray(region)).rotate(
        angle, resample=Image.Resampling.BICUBIC
    )
    return np.asarray(rotated, dtype=np.uint8)[margin : margin + side, margin : margin + side]


def random_crops(
    rgb: np.ndarray, size: int, count: int, rng: np.random.Generator, *, rotate: bool = False
) -> list[np.ndarray]:
    """`count` square crops of random side (half the shorter side up to all of it) and position,
    resized to `size`, each flipped left-right with probability 1/2; with `rotate`, half of them
    are also turned by up to `MAX_ROTATION` degrees."""
    height, width = rgb.shape[:2]
    shorter = min(height, width)
    crops = []
    for _ in range(count):
        angle = 0.0
        if rotate and rng.random() < ROTATION_SHARE:
            angle = float(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
        turn = math.radians(abs(angle))
        spread = math.cos(turn) + math.sin(turn)  # a turned square needs this much more room
        largest = max(1, int(shorter / spread) - 2) if angle else shorter
        side = int(rng.integers(min(largest, max(size, shorter // 2)), largest + 1))
        margin = math.ceil(side * (spread - 1) / 2) + 1 if angle else 0
        if side + 2 * margin > shorter:
            angle, margin = 0.0, 0
        top = int(rng.integers(margin, height - side - margin + 1))
        left = int(rng.integers(margin, width - side - margin + 1))
        if angle:
            crop = _rotated_crop(rgb, top, left, side, margin, angle)
        else:
            crop = rgb[top : top + side, left : left + side]
        crop = _resize(crop, size)
        crops.append(np.ascontiguousarray(crop[:, ::-1]) if rng.random() < 0.5 else crop)
    return crops
