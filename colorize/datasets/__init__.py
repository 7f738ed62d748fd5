"""Datasets of photos in LAB from any source of `colorize.datasets.sources` (the embedded
default set, the landscape wallpapers, a folder of colour photos, a Hugging Face dataset
`hf:...` or an archive at a URL `url:...`), each cut into seeded crops and held compactly (L as
uint8, a/b as int8, and the exact accuracy label as uint8) with a manifest of every source photo
(name, SHA-256, scene, split), so a run records exactly what it trained and validated on.

Validation never sees a training scene: whole scenes, not crops, are split. Every source goes
through the same builder (`builder.build`); `colorize.cache` stores its arrays on disk.
`test_photos` gives the whole photos people judge a model on, none of them trained on.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorize import images
from colorize.datasets import sources
from colorize.datasets.builder import BuildSettings, build, check_split
from colorize.datasets.photos import (
    EMBEDDED_NAME,
    DataError,
    PhotoRef,
    check_folder,
    embedded_arrays,
    walk_images,
)
from colorize.datasets.sinks import MemorySink

__all__ = [
    "EMBEDDED_NAME",
    "DataError",
    "DatasetSpec",
    "LabData",
    "PhotoRef",
    "check_folder",
    "embedded_arrays",
    "load_dataset",
    "read_photos",
    "source_photos",
    "test_photos",
]


@dataclass
class LabData:
    """Training and validation crops in compact LAB form.

    Attributes:
        train_l, val_l: uint8 L, shape (N, S, S, 1).
        train_target, val_target: int8 (N, S, S, 3): a and b in LAB units, then the paper's
            accuracy label (1 where the unrounded b > a, exact where int8 a/b would tie); views
            `train_ab`, `train_label` (and `val_...`) read them apart.
        manifest: one dict per source photo: file, sha256, scene, split, crops.
        skipped: photo names by reason ("grayscale", "unreadable").
    """

    name: str
    image_size: int
    train_l: np.ndarray
    train_target: np.ndarray
    val_l: np.ndarray
    val_target: np.ndarray
    manifest: list[dict] = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    upscaled: list[str] = field(default_factory=list)

    @property
    def num_photos(self) -> int:
        return len(self.manifest)

    @property
    def train_ab(self) -> np.ndarray:
        return self.train_target[..., :2]

    @property
    def val_ab(self) -> np.ndarray:
        return self.val_target[..., :2]

    @property
    def train_label(self) -> np.ndarray:
        return self.train_target[..., 2:]

    @property
    def val_label(self) -> np.ndarray:
        return self.val_target[..., 2:]


DEFAULT_SOURCE = "embedded"


@dataclass(frozen=True)
class DatasetSpec:
    """Which photos and how they become crops.

    Attributes:
        source: what `colorize.datasets.sources` takes: "embedded", "landscapes", "folder"
            (then `folder` is read; a `folder` given with the default source means it too),
            "hf:<dataset>[:<split>]" or "url:<archive URL>#sha256=<hex>".
        val_photos: whole scenes held out for validation (embedded, landscapes); a folder, a
            Hugging Face dataset and an archive hold out `val_fraction` of their photos instead.
    """

    source: str = DEFAULT_SOURCE
    folder: str | None = None
    image_size: int = 64
    crops_per_photo: int = 12
    val_photos: int = 3
    val_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self):
        if self.folder is not None and self.source == DEFAULT_SOURCE:
            # a folder given in place of the default names the photos (`data.train_dir`)
            object.__setattr__(self, "source", "folder")
        self.origin.check(self)

    @property
    def origin(self) -> sources.Source:
        """The source of its photos (`colorize.datasets.sources`)."""
        return sources.find(self.source)

    @property
    def kind(self) -> str:
        """The source's name: embedded, landscapes, folder, hf, url (or one registered)."""
        return self.origin.name

    @property
    def like_folder(self) -> bool:
        """Photos of no fixed split: `val_fraction` of them are held out."""
        return self.origin.holds_out_fraction

    @property
    def name(self) -> str:
        return self.origin.name_of(self)

    @property
    def settings(self) -> BuildSettings:
        return BuildSettings(
            image_size=self.image_size,
            crops_per_photo=self.crops_per_photo,
            seed=self.seed,
            val_photos=None if self.like_folder else self.val_photos,
            val_fraction=self.val_fraction,
            val_scenes=self.origin.validation_scenes,
        )

    @property
    def what(self) -> str:
        """The source as messages name it."""
        return self.origin.what(self)


def source_photos(spec: DatasetSpec) -> list[PhotoRef]:
    """The photos the dataset is made of (not decoded), checked against the split settings.

    Raises:
        DataError: a missing or empty folder, missing landscape packages, a Hugging Face
            dataset or archive that cannot be had, or a split that leaves no training (or
            validation) photo.
    """
    refs = spec.origin.photos(spec)
    if not spec.like_folder:  # `val_photos` too many is refused before any photo is read;
        # a share held out is checked by the build, which says what it skipped
        check_split(len({ref.scene for ref in refs}), spec.settings, spec.what)
    return refs


def test_photos(spec: DatasetSpec) -> list[PhotoRef]:
    """The whole photos people judge a model of `spec` on, none of them trained on: the
    landscapes' 7 fixed test photos; for any other source its validation scenes' photos, as
    `load_dataset` holds them out (the embedded set: `sources.embedded`'s named scenes).

    Raises:
        DataError: as `source_photos`.
    """
    return spec.origin.test_photos(spec)


def to_lab_data(spec: DatasetSpec, arrays: dict, built) -> LabData:
    """A `LabData` of built arrays (`built`: a build's record of photos); a folder's photo
    names become paths under it."""
    locate = spec.origin.located
    skipped = {k: [locate(spec, name) for name in v] for k, v in built.skipped.items()}
    upscaled = [locate(spec, name) for name in built.upscaled]
    return LabData(
        spec.name, spec.image_size, **arrays, manifest=built.manifest, skipped=skipped,
        upscaled=upscaled,
    )  # fmt: skip


def load_dataset(spec: DatasetSpec) -> LabData:
    """The dataset built in memory (studies use `colorize.cache.load_dataset_cached`)."""
    refs = source_photos(spec)
    with tempfile.TemporaryDirectory(prefix="colorize-build-") as work:
        built = build(
            refs, spec.settings, lambda rows: MemorySink(rows, spec.image_size), Path(work),
            spec.what,
        )  # fmt: skip
    return to_lab_data(spec, built.arrays, built)


def read_photos(
    folder: str | Path, what: str = "input"
) -> tuple[list[tuple[Path, np.ndarray]], list[str]]:
    """Read every image of a folder (grayscale or colour) as RGB, skipping (with a warning)
    what cannot be read.

    Returns:
        The (path, RGB uint8) pairs, and the unreadable files skipped.
    """
    from tqdm.auto import tqdm

    path = check_folder(folder, what)
    files, _ = walk_images(path)
    if not files:
        allowed = ", ".join(images.IMAGE_EXTENSIONS)
        raise DataError(f"{what} folder {path} holds no image files ({allowed})")
    photos, unreadable = [], []
    for file in tqdm(files, desc=f"reading {what}", unit="photo", leave=False, disable=None):
        try:
            photos.append((file, images.read_rgb(file)))
        except images.UnreadableImage as error:
            import logging

            logging.getLogger(__name__).warning("skipped unreadable image %s", error)
            unreadable.append(str(file))
    if not photos:
        raise DataError(f"{what} folder {path} holds no readable image")
    return photos, unreadable
