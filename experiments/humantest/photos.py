"""The photos people judge: a folder's colour photos, or the test photos of the data the study was
trained on (the landscapes' 7 fixed test photos; another source's validation scenes, which no
model of the study trained on)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.common.errors import UsageError


def folder_photos(folder: str) -> list[tuple[str, np.ndarray]]:
    """(name, RGB) of a folder's colour photos; grayscale ones are skipped (nothing to judge)."""
    from colorize import images
    from colorize.datasets import DataError, read_photos

    try:
        photos, _ = read_photos(folder, "photos")
    except DataError as error:
        raise UsageError(f"photos={folder}: {error}") from None
    root = Path(folder).expanduser()
    colour = [
        (str(path.relative_to(root)), rgb) for path, rgb in photos if not images.is_grayscale(rgb)
    ]
    if not colour:
        raise UsageError(f"photos={folder}: no colour photo there (an original must have colour)")
    return colour


def study_test_photos(data: dict) -> list[tuple[str, np.ndarray]]:
    """(name, RGB) of the test photos of the data a study stored in its `config.yaml`
    (`data` section): its source, folder, validation photos and split seed."""
    from colorize.datasets import DataError, DatasetSpec, test_photos

    source = "folder" if data.get("train_dir") else data.get("source", "embedded")
    try:
        spec = DatasetSpec(
            source=source,
            folder=data.get("train_dir"),
            val_photos=int(data.get("val_photos", 3)),
            val_fraction=float(data.get("val_fraction", 0.1)),
            seed=int(data.get("split_seed", 0)),
        )
        refs = test_photos(spec)
        return [(ref.name, ref.read()) for ref in refs]
    except DataError as error:
        raise UsageError(f"the study's test photos ({source}): {error}") from None
