"""Datasets of photos in LAB: a folder of colour photos, or the embedded default set.

A dataset is held compactly (L as uint8, a/b as int8) with a manifest of every source file (name,
SHA-256 of its content, split), so a run records exactly what it trained and validated on.
Validation never sees a training photo: photos, not crops, are split.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from colorize import images, lab

log = logging.getLogger(__name__)

EMBEDDED_NAME = "embedded"


class DataError(ValueError):
    """A problem with the user's data, reported as one line."""


@dataclass
class LabData:
    """Training and validation photos in compact LAB form.

    Attributes:
        train_l, val_l: uint8 L, shape (N, S, S, 1).
        train_ab, val_ab: int8 a/b in LAB units, shape (N, S, S, 2).
        manifest: one dict per source photo: file, sha256, split, crops.
        skipped: file lists by reason ("grayscale", "unreadable").
    """

    name: str
    image_size: int
    train_l: np.ndarray
    train_ab: np.ndarray
    val_l: np.ndarray
    val_ab: np.ndarray
    manifest: list[dict] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    upscaled: list[str] = field(default_factory=list)

    @property
    def num_photos(self) -> int:
        return len(self.manifest)


def convert_rgb_batch(
    rgb: np.ndarray,
    chunk: int = 4,
    out_l: np.ndarray | None = None,
    out_ab: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (N, H, W, 3) -> uint8 L (N, H, W, 1) and int8 a/b (N, H, W, 2).

    Chunks of `chunk` photos are converted in a thread pool (numpy releases the GIL) straight to
    the compact form with `lab.rgb_uint8_to_compact`; no float LAB array of the batch is made
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
            lab.rgb_uint8_to_compact(rgb[start:stop], out_l[start:stop], out_ab[start:stop])
        else:  # float RGB in [0, 1]: scikit-image, then encode
            converted = lab.rgb_to_lab(rgb[start:stop])
            out_l[start:stop] = lab.encode_l(converted[..., :1])
            out_ab[start:stop] = lab.encode_ab(converted[..., 1:])

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(convert, range(0, count, chunk)))
    return out_l, out_ab


def check_folder(folder: str | Path, what: str) -> Path:
    """Resolve a data folder, raising DataError for a missing or non-folder path."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise DataError(f"{what} folder not found: {path}")
    if not path.is_dir():
        raise DataError(f"{what} path is not a folder: {path}")
    return path


def iter_folder_photos(folder: Path, what: str, desc: str) -> Iterator[tuple[Path, np.ndarray]]:
    """Yield (path, RGB) for each readable image under `folder`; unreadable ones are warned and
    skipped. Raises DataError when the folder holds no image file at all."""
    files = images.list_images(folder)
    if not files:
        allowed = ", ".join(images.IMAGE_EXTENSIONS)
        raise DataError(f"{what} folder {folder} holds no image files ({allowed})")
    for path in tqdm(files, desc=desc, unit="photo", leave=False, disable=None):
        try:
            yield path, images.read_rgb(path)
        except images.UnreadableImage as error:
            log.warning("skipped unreadable image %s", error)
            yield path, None


def read_photos(
    folder: str | Path, what: str = "input"
) -> tuple[list[tuple[Path, np.ndarray]], list[str]]:
    """Read every image of a folder (grayscale or colour) as RGB.

    Returns:
        The (path, RGB uint8) pairs, and the unreadable files skipped.
    """
    path = check_folder(folder, what)
    photos, unreadable = [], []
    for file, rgb in iter_folder_photos(path, what, f"reading {what}"):
        if rgb is None:
            unreadable.append(str(file))
        else:
            photos.append((file, rgb))
    if not photos:
        raise DataError(f"{what} folder {path} holds no readable image")
    return photos, unreadable


def check_usable(folder: Path, usable: int, skipped: dict[str, list[str]]) -> None:
    """Warn about skipped grayscale photos; raise DataError when fewer than two colour photos
    (one for validation) are usable."""
    if skipped["grayscale"]:
        log.warning(
            "skipped %d grayscale photo(s) in %s (no colour to learn from)",
            len(skipped["grayscale"]),
            folder,
        )
    if usable < 2:
        raise DataError(
            f"training folder {folder} holds {usable} usable colour photo(s); need at least 2 "
            f"(one for validation); skipped {len(skipped['grayscale'])} grayscale and "
            f"{len(skipped['unreadable'])} unreadable"
        )


def _split_indices(count: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    order = np.random.default_rng(seed).permutation(count).tolist()
    num_val = min(count - 1, max(1, round(count * val_fraction)))
    return sorted(order[num_val:]), sorted(order[:num_val])


def _build(
    name: str,
    image_size: int,
    train: list[np.ndarray],
    val: list[np.ndarray],
    manifest: list[dict],
    skipped: dict[str, list[str]],
    upscaled: list[str],
) -> LabData:
    train_l, train_ab = convert_rgb_batch(np.stack(train))
    val_l, val_ab = convert_rgb_batch(np.stack(val))
    return LabData(name, image_size, train_l, train_ab, val_l, val_ab, manifest, skipped, upscaled)


def load_folder(
    train_dir: str | Path, image_size: int, val_fraction: float = 0.1, seed: int = 0
) -> LabData:
    """Load a folder of colour photos (recursive), each resized and centre-cropped to a square.

    Grayscale photos are skipped and counted (they carry no colour); unreadable files are skipped
    with a warning naming them.

    Raises:
        DataError: missing or empty folder, or fewer than two usable colour photos.
    """
    folder = check_folder(train_dir, "training")
    kept: list[tuple[Path, np.ndarray]] = []
    skipped: dict[str, list[str]] = {"grayscale": [], "unreadable": []}
    upscaled: list[str] = []
    for path, rgb in iter_folder_photos(folder, "training", "reading photos"):
        if rgb is None:
            skipped["unreadable"].append(str(path))
        elif images.is_grayscale(rgb):
            skipped["grayscale"].append(str(path))
        else:
            if min(rgb.shape[:2]) < image_size:
                upscaled.append(str(path))
                log.warning(
                    "%s is %dx%d, smaller than image_size %d: upscaled",
                    path,
                    rgb.shape[1],
                    rgb.shape[0],
                    image_size,
                )
            kept.append((path, images.fit_square(rgb, image_size)))
    check_usable(folder, len(kept), skipped)
    train_idx, val_idx = _split_indices(len(kept), val_fraction, seed)
    split = {i: "train" for i in train_idx} | {i: "validation" for i in val_idx}
    manifest = [
        {
            "file": str(path.relative_to(folder)),
            "sha256": images.file_sha256(path),
            "split": split[i],
            "crops": 1,
        }
        for i, (path, _) in enumerate(kept)
    ]
    return _build(
        str(folder),
        image_size,
        [kept[i][1] for i in train_idx],
        [kept[i][1] for i in val_idx],
        manifest,
        skipped,
        upscaled,
    )


def embedded_photos() -> dict[str, np.ndarray]:
    """The colour photos that ship inside installed packages (no download), by name."""
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_image

    photos = {
        f"skimage:{name}": getattr(skimage.data, name)()
        for name in (
            "astronaut",
            "chelsea",
            "coffee",
            "rocket",
            "hubble_deep_field",
            "immunohistochemistry",
            "retina",
        )
    }
    left, right, _ = skimage.data.stereo_motorcycle()
    photos["skimage:motorcycle_left"] = left
    photos["skimage:motorcycle_right"] = right
    for name in ("china.jpg", "flower.jpg"):
        photos[f"sklearn:{name}"] = load_sample_image(name)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        from PIL import Image

        photos["matplotlib:grace_hopper.jpg"] = np.asarray(Image.open(handle).convert("RGB"))
    return photos


def random_crops(
    rgb: np.ndarray, size: int, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """`count` square crops of random side (half the shorter side up to all of it) and position,
    resized to `size`, each flipped left-right with probability 1/2."""
    height, width = rgb.shape[:2]
    shorter = min(height, width)
    crops = []
    for _ in range(count):
        side = (
            int(rng.integers(max(size, shorter // 2), shorter + 1)) if shorter > size else shorter
        )
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        crop = images.resize(rgb[top : top + side, left : left + side], size, size)
        crops.append(crop[:, ::-1] if rng.random() < 0.5 else crop)
    return crops


def load_embedded(
    image_size: int, crops_per_photo: int = 16, val_photos: int = 3, seed: int = 0
) -> LabData:
    """The embedded default dataset: seeded random crops (with flips) of the packaged photos.

    `val_photos` whole photos are held out for validation (each gives crops_per_photo // 2 crops,
    at least 2), so validation never sees a crop of a training photo.
    """
    photos = embedded_photos()
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    val_names = set(rng.choice(names, size=val_photos, replace=False).tolist())
    train, val, manifest = [], [], []
    for name in names:
        is_val = name in val_names
        count = max(2, crops_per_photo // 2) if is_val else crops_per_photo
        crops = random_crops(photos[name], image_size, count, rng)
        (val if is_val else train).extend(crops)
        manifest.append(
            {
                "file": name,
                "sha256": images.array_sha256(photos[name]),
                "split": "validation" if is_val else "train",
                "crops": count,
            }
        )
    return _build(EMBEDDED_NAME, image_size, train, val, manifest, {}, [])


def load_dataset(
    train_dir: str | None,
    image_size: int,
    *,
    val_fraction: float = 0.1,
    crops_per_photo: int = 16,
    val_photos: int = 3,
    seed: int = 0,
) -> LabData:
    """A folder of photos when `train_dir` is given, else the embedded default."""
    if train_dir:
        return load_folder(train_dir, image_size, val_fraction=val_fraction, seed=seed)
    return load_embedded(
        image_size, crops_per_photo=crops_per_photo, val_photos=val_photos, seed=seed
    )
