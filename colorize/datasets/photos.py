"""The photos a dataset is made of, listed without decoding them: a folder of the user's photos,
the embedded photos that ship inside installed packages, or the landscape wallpapers.

Each photo is a `PhotoRef`: its name (as the manifest records it), its scene (photos of one
scene are split together), the SHA-256 of its content and how to read it. Problems found while
listing a folder (a broken link, a symbolic link loop, a file or subfolder that cannot be read)
are logged as warnings naming them and recorded on the photo, never raised.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorize import images

log = logging.getLogger(__name__)
EMBEDDED_NAME = "embedded"
# Photos of one scene, held out together (the stereo pair is two views of one scene).
EMBEDDED_SCENES = {
    "skimage:motorcycle_left": "skimage:motorcycle",
    "skimage:motorcycle_right": "skimage:motorcycle",
}


class DataError(ValueError):
    """A problem with the user's data, reported as one line."""


@dataclass(frozen=True)
class PhotoRef:
    """One source photo.

    Attributes:
        name: as the manifest records it (a path relative to the folder, or `package:name`).
        scene: photos of one scene go to the same split.
        digest: SHA-256 of the file (or, for an in-memory photo, of its pixels); "" if unread.
        path: the file, or None for an in-memory photo.
        problem: why the file cannot be read, when listing already found out.
    """

    name: str
    scene: str
    digest: str
    path: Path | None = None
    problem: str = ""
    loader: Callable[[], np.ndarray] | None = None

    def read(self) -> np.ndarray:
        """The photo as RGB uint8. Raises `images.UnreadableImage` naming it."""
        if self.problem:
            raise images.UnreadableImage(f"{self.path or self.name}: {self.problem}")
        if self.loader is not None:
            return self.loader()
        return images.read_rgb(self.path)


def check_folder(folder: str | Path, what: str) -> Path:
    """Resolve a data folder, raising DataError for a missing or non-folder path."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise DataError(f"{what} folder not found: {path}")
    if not path.is_dir():
        raise DataError(f"{what} path is not a folder: {path}")
    return path


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def walk_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Image files under `folder` (recursive, following links to folders once), sorted, and
    the problems met: subfolders that cannot be read and link loops, each logged."""
    problems: list[str] = []

    def unreadable(error: OSError) -> None:
        problems.append(f"{error.filename}: cannot read the folder ({_reason(error)})")

    files, seen = [], set()
    for root, dirs, names in os.walk(folder, onerror=unreadable, followlinks=True):
        try:
            status = os.stat(root)
        except OSError as error:
            unreadable(error)
            dirs[:] = []
            continue
        if (status.st_dev, status.st_ino) in seen:  # a link back to a folder already listed
            problems.append(f"{root}: a link back to a folder listed already (a loop)")
            dirs[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        dirs.sort()
        files += [
            Path(root) / name
            for name in names
            if Path(name).suffix.lower() in images.IMAGE_EXTENSIONS
        ]
    for problem in problems:
        log.warning("skipped %s", problem)
    return sorted(files), problems


def folder_photos(folder: Path) -> list[PhotoRef]:
    """Every image file of a folder as a photo of its own scene; a file that cannot be read
    (broken link, link loop, no permission) is listed with its problem."""
    files, _ = walk_images(folder)
    refs = []
    for path in files:
        name = str(path.relative_to(folder))
        try:
            refs.append(PhotoRef(name, name, images.file_sha256(path), path))
        except OSError as error:
            refs.append(PhotoRef(name, name, "", path, problem=_reason(error)))
    return refs


def embedded_arrays() -> dict[str, np.ndarray]:
    """The colour photos that ship inside installed packages (no download), by name."""
    import matplotlib.cbook
    import skimage.data
    from PIL import Image
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
        photos["matplotlib:grace_hopper.jpg"] = np.asarray(Image.open(handle).convert("RGB"))
    return photos


def embedded_photos() -> list[PhotoRef]:
    arrays = embedded_arrays()
    return [
        PhotoRef(
            name,
            EMBEDDED_SCENES.get(name, name),
            images.array_sha256(arrays[name]),
            loader=lambda rgb=arrays[name]: rgb,
        )
        for name in sorted(arrays)
    ]
