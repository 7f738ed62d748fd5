"""The one dataset builder: photos -> seeded crops -> compact LAB arrays, streamed into a sink.

Pass 1 decodes each photo once (a few at a time, in a thread pool), skips it with a warning if
it cannot be read or has no colour, shrinks it to a working copy and cuts its crops for both
roles: `crops_per_photo` augmented training crops and `val_crops` plain validation crops, each
converted straight to uint8 L and int8 targets (a, b and the exact accuracy label) and appended
to raw files.
Then whole scenes are drawn for validation among the usable photos, and pass 2 copies each
photo's rows of its role into the sink. Memory stays bounded by the window of photos in flight,
however many photos there are.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from colorize import images, lab
from colorize.datasets.augment import photo_rng, random_crops, working_copy
from colorize.datasets.photos import DataError, PhotoRef
from colorize.datasets.sinks import ARRAYS

log = logging.getLogger(__name__)
WINDOW = 32  # photos decoded at a time (bounds memory)
ROLES = ("train", "val")
KINDS = ("l", "target")


@dataclass(frozen=True)
class BuildSettings:
    """How photos become arrays. Validation takes `val_photos` scenes, or (when it is None)
    `val_fraction` of them, at least one: the usable ones of `val_scenes` first, in order, then
    a seeded draw of the rest."""

    image_size: int
    crops_per_photo: int
    seed: int = 0
    val_photos: int | None = 3
    val_fraction: float = 0.1
    val_scenes: tuple[str, ...] = ()

    @property
    def val_crops(self) -> int:
        return max(2, self.crops_per_photo // 2)


@dataclass
class Built:
    """What a build made: the sink's result and the record of every photo."""

    arrays: dict
    manifest: list[dict]
    skipped: dict[str, list[str]] = field(default_factory=dict)
    upscaled: list[str] = field(default_factory=list)


@dataclass
class _Prepared:
    state: str  # kept, grayscale, unreadable
    reason: str = ""
    upscaled: str = ""  # "WxH" of a photo smaller than the image size
    rows: dict[str, int] = field(default_factory=dict)  # role -> crops
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def convert(crops: list[np.ndarray]) -> dict[str, np.ndarray]:
    """uint8 RGB crops -> {"l": uint8 L, "target": int8 [a, b, label]} (label from the
    unrounded a/b: 1 where b > a)."""
    rgb = np.stack(crops)
    lightness = np.empty(rgb.shape[:3] + (1,), np.uint8)
    ab = np.empty(rgb.shape[:3] + (2,), np.int8)
    label = np.empty(rgb.shape[:3] + (1,), np.uint8)
    lab.rgb_uint8_to_compact(rgb, lightness, ab, label)
    return {"l": lightness, "target": np.concatenate([ab, label.view(np.int8)], axis=-1)}


def _prepare(ref: PhotoRef, settings: BuildSettings) -> _Prepared:
    try:
        rgb = ref.read()
    except images.UnreadableImage as error:
        return _Prepared("unreadable", str(error))
    if images.is_grayscale(rgb):
        return _Prepared("grayscale")
    size = settings.image_size
    work = working_copy(rgb, size)
    train_rng, val_rng = photo_rng(settings.seed, ref.digest).spawn(2)
    train = random_crops(work, size, settings.crops_per_photo, train_rng, rotate=True)
    arrays = {
        "train": convert(train),
        "val": convert(random_crops(work, size, settings.val_crops, val_rng)),
    }
    small = f"{rgb.shape[1]}x{rgb.shape[0]}" if min(rgb.shape[:2]) < size else ""
    rows = {role: len(role_arrays["l"]) for role, role_arrays in arrays.items()}
    return _Prepared("kept", upscaled=small, rows=rows, arrays=arrays)


def _in_order(refs: list[PhotoRef], settings: BuildSettings) -> Iterator[_Prepared]:
    """Prepared photos in order, at most WINDOW in flight."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for start in range(0, len(refs), WINDOW):
            yield from pool.map(lambda ref: _prepare(ref, settings), refs[start : start + WINDOW])


def validation_scenes(scenes: list[str], settings: BuildSettings) -> set[str]:
    """The scenes held out for validation: the named ones (`settings.val_scenes`) first, then a
    seeded draw of whole scenes among the rest."""
    unique = sorted(set(scenes))
    if settings.val_photos is not None:
        count = settings.val_photos
    else:
        count = min(len(unique) - 1, max(1, round(len(unique) * settings.val_fraction)))
    named = [scene for scene in settings.val_scenes if scene in unique][:count]
    rest = [scene for scene in unique if scene not in named]
    # Without named scenes the draw is the one every earlier dataset was split by.
    order = np.random.default_rng(settings.seed).permutation(len(rest))
    return {*named, *(rest[i] for i in order[: count - len(named)])}


def held_out(refs: list[PhotoRef], settings: BuildSettings, what: str) -> list[PhotoRef]:
    """The photos of `refs` that a build with `settings` holds out for validation. The draw is
    among usable photos (grayscale and unreadable ones skipped), so those are read here too:
    only the named scenes' (`settings.val_scenes`) where they are enough, else every photo once.

    Raises:
        DataError: as `check_split`.
    """
    count = settings.val_photos
    named = [scene for scene in settings.val_scenes if any(r.scene == scene for r in refs)]
    if count is not None and count <= len(named):
        kept = {ref.name for ref in refs if ref.scene in named and _usable(ref)}
        usable = [s for s in named if any(r.name in kept and r.scene == s for r in refs)]
        if len(usable) >= count:
            held = set(usable[:count])
            return [ref for ref in refs if ref.scene in held and ref.name in kept]
    kept = {ref.name for ref in refs if _usable(ref)}
    scenes = [ref.scene for ref in refs if ref.name in kept]
    check_split(len(set(scenes)), settings, what)
    held = validation_scenes(scenes, settings)
    return [ref for ref in refs if ref.scene in held and ref.name in kept]


def _usable(ref: PhotoRef) -> bool:
    """Whether a build keeps `ref`: readable and in colour."""
    try:
        return not images.is_grayscale(ref.read())
    except images.UnreadableImage:
        return False


def check_split(scenes: int, settings: BuildSettings, what: str, skipped: str = "") -> None:
    """Refuse settings that leave no training photo, or no validation one."""
    if scenes < 2:
        raise DataError(
            f"{what} holds {scenes} usable colour photo(s); need at least 2 (one for "
            f"validation){skipped}"
        )
    if settings.val_photos is not None and settings.val_photos >= scenes:
        raise DataError(
            f"data.val_photos={settings.val_photos} leaves no training photo: {what} holds "
            f"{scenes} scenes; allowed: 1 to {scenes - 1}"
        )


def _pass_one(refs, settings, work: Path, what: str):
    """Decode and crop every photo into raw files per role; returns the per-photo results."""
    handles = {
        (role, kind): open(work / f"{role}_{kind}.raw", "wb")  # noqa: SIM115  (closed below)
        for role in ROLES
        for kind in KINDS
    }
    results: list[_Prepared] = []
    try:
        bar = tqdm(total=len(refs), desc="reading photos", unit="photo", leave=False, disable=None)
        for ref, prepared in zip(refs, _in_order(refs, settings), strict=True):
            bar.update(1)
            if prepared.state == "unreadable":
                log.warning("skipped unreadable image %s", prepared.reason)
            elif prepared.upscaled:
                log.warning(
                    "%s is %s, smaller than image_size %d: upscaled",
                    ref.path or ref.name,
                    prepared.upscaled,
                    settings.image_size,
                )
            for role, arrays in prepared.arrays.items():
                for kind, block in arrays.items():
                    handles[role, kind].write(memoryview(np.ascontiguousarray(block)).cast("B"))
            prepared.arrays = {}  # written: only the counts are kept
            results.append(prepared)
        bar.close()
    finally:
        for handle in handles.values():
            handle.close()
    return results


def build(
    refs: list[PhotoRef],
    settings: BuildSettings,
    make_sink: Callable[[dict[str, int]], object],
    work: Path,
    what: str = "the dataset",
) -> Built:
    """Build the dataset of `refs` into the sink `make_sink({"train": n, "val": m})` returns,
    using the folder `work` for raw rows (removed when done)."""
    results = _pass_one(refs, settings, work, what)
    kept = [i for i, result in enumerate(results) if result.state == "kept"]
    skipped = {
        state: [refs[i].name for i, result in enumerate(results) if result.state == state]
        for state in ("grayscale", "unreadable")
    }
    if skipped["grayscale"]:
        log.warning(
            "skipped %d grayscale photo(s) in %s (no colour to learn from)",
            len(skipped["grayscale"]),
            what,
        )
    usable_scenes = sorted({refs[i].scene for i in kept})
    counts = f"; skipped {len(skipped['grayscale'])} grayscale and {len(skipped['unreadable'])} unreadable"
    check_split(len(usable_scenes), settings, what, counts)
    held_out = validation_scenes(usable_scenes, settings)
    role_of = {i: "val" if refs[i].scene in held_out else "train" for i in kept}
    rows = {role: sum(results[i].rows[role] for i in kept if role_of[i] == role) for role in ROLES}
    sink = make_sink(rows)
    size = settings.image_size
    for role in ROLES:
        for kind in KINDS:
            dtype, channels = ARRAYS[f"{role}_{kind}"]
            row_bytes = size * size * channels
            with open(work / f"{role}_{kind}.raw", "rb") as handle:
                for i in kept:
                    count = results[i].rows[role]
                    block = np.frombuffer(handle.read(count * row_bytes), dtype)
                    if role_of[i] == role:
                        sink.write(f"{role}_{kind}", block.reshape(count, size, size, channels))
            (work / f"{role}_{kind}.raw").unlink()
    manifest = [
        {
            "file": refs[i].name,
            "sha256": refs[i].digest,
            "scene": refs[i].scene,
            "split": "validation" if role_of[i] == "val" else "train",
            "crops": results[i].rows[role_of[i]],
        }
        for i in kept
    ]
    upscaled = [refs[i].name for i in kept if results[i].upscaled]
    return Built(sink.close(), manifest, skipped, upscaled)
