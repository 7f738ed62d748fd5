"""Colorizing a folder of photos into another: every image under the input (recursive), written
as a PNG of its own size at the same relative path. The `colorize` command and a study's test
photos both use it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from colorize import images
from colorize.datasets import DataError, check_folder
from colorize.datasets.photos import walk_images

log = logging.getLogger("colorize")


class FolderError(ValueError):
    """The folders cannot be used as given; the message says why."""


@dataclass
class ColorizedFolder:
    """What `colorize_folder` did: outputs written, inputs it could not read, and (where asked
    to keep them) each photo read as (path relative to the input, RGB uint8)."""

    written: int = 0
    unreadable: list[Path] = field(default_factory=list)
    photos: list[tuple[str, np.ndarray]] = field(default_factory=list)


def unwritable(folder: Path) -> str:
    """Why files cannot be written under `folder` (made, with its parents, where missing), or
    "" where they can; judged without writing anything."""
    existing = Path(folder).expanduser().absolute()
    while not existing.exists() and not existing.is_symlink():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        return f"{existing} is on a read-only file system"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"no permission to write in {existing}"
    return ""


def plan_outputs(source: Path, output: Path) -> dict[Path, Path]:
    """Each image under `source` with the file it is written to under `output`.

    Raises:
        FolderError: an unusable input folder, one with no image, an output folder that is
            (inside) the input folder or cannot be written, or two inputs that would write one
            output (a.jpg, a.png).
    """
    from colorize.predict import output_name

    try:
        files, _ = walk_images(check_folder(source, "input"))
    except DataError as error:
        raise FolderError(str(error)) from None
    if not files:
        raise FolderError(f"input folder {source} holds no image files")
    source_real, output_real = source.resolve(), output.resolve()
    if output_real == source_real or source_real in output_real.parents:
        raise FolderError(
            f"--output {output} is inside --input {source}: outputs would overwrite inputs or "
            "be read as inputs next time; choose a folder outside it"
        )
    problem = unwritable(output)
    if problem:
        raise FolderError(f"--output {output} cannot be written: {problem}")
    targets: dict[Path, Path] = {}
    for file in files:
        target = output / output_name(file, source)
        if target in targets.values():
            first = next(f for f, t in targets.items() if t == target)
            raise FolderError(
                f"{first} and {file} would both be written as {target}; rename one of them"
            )
        targets[file] = target
    return targets


def colorize_folder(
    model, targets: dict[Path, Path], source: Path, l_scaling: str, keep_photos: bool = False
) -> ColorizedFolder:
    """Colorize each input of `targets` (from `plan_outputs`) into its output file; an
    unreadable input is skipped with a warning naming it."""
    from PIL import Image
    from tqdm.auto import tqdm

    from colorize.predict import colorize_rgb

    result = ColorizedFolder()
    for file in tqdm(list(targets), desc="colorizing", unit="photo", disable=None):
        try:
            rgb = images.read_rgb(file)
        except images.UnreadableImage as error:
            log.warning("skipped unreadable image %s", error)
            result.unreadable.append(file)
            continue
        targets[file].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(colorize_rgb(model, rgb, l_scaling)).save(targets[file])
        result.written += 1
        if keep_photos:
            result.photos.append((str(file.relative_to(source)), rgb))
    return result
