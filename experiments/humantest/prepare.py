"""Preparing a real-or-colorized test once: every pair's two photos cropped and sized the same,
the colorization made from the original's own L, both written the same way.

Nothing tells the two photos of a pair apart but their pixels: both are RGB PNG files of the same
size, stored uncompressed (so their byte counts are equal too), with no metadata, under random
names; the server sends them with the same headers. Practice and catch pairs use photos of their
own (the embedded photos that are not test photos), so a practice pair's feedback never tells a
participant about a test photo.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from experiments.humantest.protocol import CATCH, PRACTICE, TEST, Protocol

# The embedded photos best suited to practice and catch pairs (scenes people know), in order.
PRACTICE_ORDER = (
    "skimage:astronaut",
    "sklearn:flower.jpg",
    "skimage:coffee",
    "skimage:chelsea",
    "sklearn:china.jpg",
    "matplotlib:grace_hopper.jpg",
    "skimage:rocket",
    "skimage:motorcycle_left",
)


@dataclass(frozen=True)
class TestModel:
    """A model under test: its label (an alias, e.g. `loss-mse`), its reference, and how to
    colorize a photo with it (RGB uint8 in, RGB uint8 of the same size out)."""

    label: str
    uri: str
    colorize: object


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square of a photo, resized to `size` x `size` (RGB uint8)."""
    height, width = rgb.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(np.ascontiguousarray(rgb[top : top + side, left : left + side]))
    return np.asarray(square.resize((size, size), Image.Resampling.LANCZOS))


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The photo's L alone, as RGB (what the network is given)."""
    from colorize import lab

    lightness = lab.rgb_to_lab(rgb)[..., :1]
    chroma = np.zeros((*lightness.shape[:-1], 2), lightness.dtype)
    return lab.lab_to_rgb_uint8(np.concatenate([lightness, chroma], -1))


def write_image(rgb: np.ndarray, folder: Path) -> tuple[str, str]:
    """Write one photo as an uncompressed RGB PNG without metadata under a random name; returns
    (id, file name)."""
    image_id = secrets.token_hex(16)
    name = f"{image_id}.png"
    Image.fromarray(np.ascontiguousarray(rgb.astype(np.uint8)), "RGB").save(
        folder / name, format="PNG", compress_level=0
    )
    return image_id, name


def practice_pool(exclude_digests: set[str]) -> list[tuple[str, np.ndarray]]:
    """Embedded photos for practice and catch pairs, none of them a test photo."""
    from colorize import images
    from colorize.datasets import embedded_arrays

    arrays = embedded_arrays()
    ordered = [name for name in PRACTICE_ORDER if name in arrays]
    ordered += sorted(set(arrays) - set(ordered))
    return [
        (name, arrays[name])
        for name in ordered
        if images.array_sha256(arrays[name]) not in exclude_digests
    ]


def prepare_pairs(
    folder: Path,
    models: list[TestModel],
    photos: list[tuple[str, np.ndarray]],
    pool: list[tuple[str, np.ndarray]],
    protocol: Protocol,
    progress=None,
) -> tuple[dict[str, str], list[dict]]:
    """Write every pair's photos into `folder`; returns ({image id: file}, pair records).

    Args:
        models: the models under test; the first also colorizes the practice pairs.
        photos: (name, RGB) test photos: one test pair for each model and photo.
        pool: (name, RGB) photos for practice and catch pairs (reused in turn if too few).
    """
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    pairs: list[dict] = []

    def add_pair(kind: str, model: str, photo: str, original: np.ndarray, other: np.ndarray):
        original_id, original_file = write_image(original, folder)
        other_id, other_file = write_image(other, folder)
        images.update({original_id: original_file, other_id: other_file})
        pairs.append(
            {"id": secrets.token_hex(16), "kind": kind, "model": model, "photo": photo,
             "original_image": original_id, "other_image": other_id}
        )  # fmt: skip

    steps = len(photos) * len(models) + protocol.practice + protocol.catch
    done = 0
    for name, rgb in photos:
        original = square_crop(rgb, protocol.size)
        for model in models:
            add_pair(TEST, model.label, name, original, model.colorize(original))
            done += 1
            if progress:
                progress(done, steps)
    for index in range(protocol.practice):
        name, rgb = pool[index % len(pool)]
        original = square_crop(rgb, protocol.size)
        add_pair(PRACTICE, models[0].label, name, original, models[0].colorize(original))
        done += 1
        if progress:
            progress(done, steps)
    for index in range(protocol.catch):  # after the practice photos, where there are enough
        name, rgb = pool[(protocol.practice + index) % len(pool)]
        original = square_crop(rgb, protocol.size)
        add_pair(CATCH, "gray", name, original, gray_of(original))
        done += 1
        if progress:
            progress(done, steps)
    return images, pairs
