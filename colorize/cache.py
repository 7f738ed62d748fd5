"""Convert once: a dataset's compact LAB arrays cached on disk, memory-mapped by every trial.

`load_dataset_cached` returns the same `LabData` as `colorize.datasets.load_dataset`, built by the
same builder, but once per dataset and settings. The arrays (`colorize.datasets.sinks.ARRAYS`)
are `.npy` files opened with `np.load(mmap_mode="r")`, beside a `meta.json` holding the manifest,
the skipped files, the name, the image size and each file's size and CRC-32.

Layout: `<cache_dir>/<source>-<image_size>-<key[:16]>/{meta.json, *.npy}`. The key is a SHA-256
over what the arrays are made from:

- the sources: each photo's name, scene and SHA-256 (hashing a file is far cheaper than decoding
  it), or the reason it cannot be read;
- the settings that change the arrays: image size, crops per photo, the validation split and
  its seed;
- `CACHE_VERSION` (bump it when conversion, cropping or encoding code changes) and Pillow's
  version (it resizes).

A cache is never trusted blindly: it is built in a temporary folder and renamed into place only
when complete, and on load the JSON, every file's size, shape and dtype and (by default) every
file's CRC-32 are checked. A missing, truncated, corrupted or half-written cache is logged, removed
and rebuilt. Builds of one key are serialized with a file lock, so parallel workers build once.
The returned memmaps hand pages they have served back to the page cache every `RELEASE_BYTES`,
so reading the dataset epoch after epoch does not grow the process's RSS.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import shutil
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from colorize.datasets import DatasetSpec, LabData, PhotoRef, source_photos, to_lab_data
from colorize.datasets.builder import build
from colorize.datasets.sinks import ARRAYS, NpySink
from colorize.locks import exclusive

log = logging.getLogger(__name__)

CACHE_VERSION = 3  # bump when conversion, cropping, resizing or encoding code changes
META_FILE = "meta.json"
RELEASE_BYTES = 64 << 20  # a memmap unmaps the pages it served after about this many bytes
FAULT_SPAN = 2 << 20  # what one page fault may map beyond the bytes read (a large folio)
_CHUNK = 16 << 20  # bytes per read when checksumming


class CacheInvalid(Exception):
    """A cached dataset that must not be used; the message says why."""


@dataclass
class CachedLabData(LabData):
    """`LabData` whose arrays are read-only memmaps of a cache entry.

    Attributes:
        cache_path: the entry's folder.
        key: the entry's full cache key (SHA-256 hex).
        built: True when this call converted the photos, False when it reused the cache.
    """

    cache_path: Path | None = None
    key: str = ""
    built: bool = False


class ReleasingMemmap(np.memmap):
    """A read-only memmap that unmaps the pages it has served every `RELEASE_BYTES` or so.

    Pages of a file mapping that a process has touched count in its RSS until unmapped, so
    streaming a 2 GB memmap through an epoch would show as 2 GB of RSS even though the kernel
    may drop those pages at will. `madvise(MADV_DONTNEED)` on a shared read-only file mapping
    only drops this process's page-table entries: the data stays in the page cache and the next
    read maps it again (a minor fault), so nothing is lost and nothing is read from disk again.

    What a read maps is more than what it copies: recent kernels keep file pages in large
    folios and map a whole folio (up to 2 MB) on one fault, so a shuffled batch of 16 photos
    can map 32 MB. Each copied row is therefore counted as its size plus `FAULT_SPAN`.
    """

    def __array_finalize__(self, obj):
        super().__array_finalize__(obj)
        self._served = getattr(obj, "_served", None) if self._mmap is not None else None

    def __getitem__(self, index):
        result = super().__getitem__(index)
        if isinstance(result, np.memmap) and result._mmap is None:
            result = result.view(np.ndarray)  # a copy (fancy index): count what it mapped
            rows = len(result) if result.ndim == self.ndim and result.ndim else 1
            self._count(result.nbytes + rows * FAULT_SPAN)
        return result

    def _count(self, nbytes: int) -> None:
        served = self._served
        if served is None:
            return
        served[0] += nbytes
        if served[0] >= RELEASE_BYTES:
            served[0] = 0
            release_pages(self)


def release_pages(array: np.ndarray) -> None:
    """Unmap the pages a memmap has touched (they stay in the page cache); no-op otherwise."""
    handle = getattr(array, "_mmap", None)
    advice = getattr(mmap, "MADV_DONTNEED", None)
    if handle is None or advice is None:
        return
    with contextlib.suppress(ValueError, OSError):  # closed mapping, or a platform without it
        handle.madvise(advice)


# --- the key -------------------------------------------------------------------------------------
def _pillow_version() -> str:
    import PIL

    return PIL.__version__


def dataset_key(spec: DatasetSpec, refs: list[PhotoRef] | None = None) -> tuple[str, dict]:
    """The cache key of a dataset and its settings, without decoding any photo.

    Args:
        refs: the dataset's photos, if already listed (`colorize.datasets.source_photos`).

    Returns:
        The key (SHA-256 hex) and what it was computed from (sources and settings).

    Raises:
        DataError: as `colorize.datasets.source_photos`.
    """
    refs = source_photos(spec) if refs is None else refs
    settings = spec.settings
    material = {
        "cache_version": CACHE_VERSION,
        "pillow": _pillow_version(),
        "source": spec.source,
        "settings": {
            "image_size": settings.image_size,
            "crops_per_photo": settings.crops_per_photo,
            "val_photos": settings.val_photos,
            "val_fraction": None if settings.val_photos is not None else settings.val_fraction,
            "seed": settings.seed,
        },
        "sources": [
            [ref.name, ref.scene, ref.digest or f"unreadable: {ref.problem}"] for ref in refs
        ],
    }
    if settings.val_scenes:  # absent otherwise, so the entries of earlier splits keep their key
        material["settings"]["val_scenes"] = list(settings.val_scenes)
    material |= spec.origin.key_material(spec)  # e.g. a Hub dataset's revision
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), material


# --- reading and checking ------------------------------------------------------------------------
def file_crc32(path: Path) -> int:
    """CRC-32 of a file, read in chunks (plain reads: no mapping, bounded memory)."""
    crc = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while True:
            count = handle.readinto(buffer)
            if not count:
                return crc
            crc = zlib.crc32(view[:count], crc)


def _open_array(path: Path, described: dict) -> np.ndarray:
    shape, dtype = tuple(described["shape"]), np.dtype(described["dtype"])
    if 0 in shape:  # an empty array cannot be memory-mapped
        array = np.load(path)
    else:
        mapped = np.load(path, mmap_mode="r")
        array = mapped.view(ReleasingMemmap)
        array._served = [0]
    if array.shape != shape or array.dtype != dtype:
        raise CacheInvalid(
            f"{path.name} holds {array.dtype}{array.shape}, expected {dtype}{tuple(shape)}"
        )
    return array


def read_entry(entry: Path, key: str, verify: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """Check a cache entry and open its arrays as memmaps.

    Args:
        verify: also compare every file's CRC-32 with the JSON (reads the whole cache once;
            see docs/BENCHMARKS.md for its cost). Sizes, shapes and dtypes are always checked.

    Raises:
        CacheInvalid: anything missing, unreadable or different from what the JSON records.
    """
    meta_path = entry / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CacheInvalid(f"{META_FILE} is missing") from None
    except (OSError, ValueError) as error:
        raise CacheInvalid(f"{META_FILE} is unreadable: {error}") from None
    if not isinstance(meta, dict) or meta.get("cache_version") != CACHE_VERSION:
        raise CacheInvalid(f"{META_FILE} is from another cache version")
    if meta.get("key") != key:
        raise CacheInvalid(f"{META_FILE} is for another key")
    described_all = meta.get("arrays") or {}
    if set(described_all) != set(ARRAYS):
        raise CacheInvalid(f"{META_FILE} does not list the arrays {', '.join(ARRAYS)}")
    arrays = {}
    for name in ARRAYS:
        described = described_all[name]
        path = entry / described["file"]
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise CacheInvalid(f"{path.name} is missing") from None
        if size != described["bytes"]:
            raise CacheInvalid(f"{path.name} is {size} bytes, expected {described['bytes']}")
        if verify and file_crc32(path) != described["crc32"]:
            raise CacheInvalid(f"{path.name} does not match its CRC-32 (corrupted)")
        try:
            arrays[name] = _open_array(path, described)
        except (OSError, ValueError) as error:
            raise CacheInvalid(f"{path.name} cannot be opened: {error}") from None
    return meta, arrays


def _remove(path: Path) -> None:
    """Remove a folder: renamed aside first, so a half-removed entry is never seen as one."""
    if not path.exists():
        return
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    try:
        path.rename(trash)
    except OSError:
        trash = path
    shutil.rmtree(trash, ignore_errors=True)


def _entry_name(spec: DatasetSpec, key: str) -> str:
    """The entry's folder name: content only (a moved or renamed photo folder keeps it)."""
    return f"{spec.kind}-{spec.image_size}-{key[:16]}"


@dataclass
class _Meta:
    """The parts of meta.json a `LabData` is made of."""

    manifest: list
    skipped: dict
    upscaled: list


def load_dataset_cached(
    cache_dir: str | Path,
    spec: DatasetSpec,
    verify: bool = True,
    refs: list[PhotoRef] | None = None,
) -> CachedLabData:
    """`colorize.datasets.load_dataset`, built once and memory-mapped from `cache_dir`.

    Args:
        cache_dir: where cache entries live (created if missing); shared by studies and trials.
        spec: the dataset.
        verify: check every cached file's CRC-32 on load (sizes, shapes and dtypes are always
            checked).
        refs: the dataset's photos, if already listed.

    Returns:
        A `LabData` (a `CachedLabData`) whose arrays are read-only memmaps; `.built` says
        whether this call converted the photos.

    Raises:
        DataError: as `load_dataset` (missing or empty folder, too few usable photos).
    """
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    refs = source_photos(spec) if refs is None else refs
    key, material = dataset_key(spec, refs)
    entry = cache_dir / _entry_name(spec, key)

    def result(meta: dict, arrays: dict, built: bool) -> CachedLabData:
        data = to_lab_data(
            spec, arrays, _Meta(meta["manifest"], meta["skipped"], meta["upscaled"])
        )
        return CachedLabData(**data.__dict__, cache_path=entry, key=key, built=built)

    with exclusive(cache_dir / f".{entry.name}.lock"):
        if entry.exists():
            try:
                meta, arrays = read_entry(entry, key, verify=verify)
                return result(meta, arrays, False)
            except CacheInvalid as reason:
                log.warning("dataset cache %s is invalid (%s): rebuilding", entry, reason)
                _remove(entry)
        _build_entry(entry, spec, refs, key, material)
        meta, arrays = read_entry(entry, key, verify=False)  # just written and checksummed
        return result(meta, arrays, True)


def _build_entry(entry: Path, spec: DatasetSpec, refs, key: str, material: dict) -> None:
    """Convert the photos into a new cache entry, written aside and renamed into place, so the
    entry is complete or absent (a killed build leaves a `.tmp-` folder, removed next time)."""
    cache_dir = entry.parent
    for stale in cache_dir.glob(f".tmp-{entry.name}-*"):  # a killed build's leftovers
        shutil.rmtree(stale, ignore_errors=True)
    temp = cache_dir / f".tmp-{entry.name}-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        started = time.perf_counter()
        built = build(
            refs, spec.settings, lambda rows: NpySink(temp, rows, spec.image_size), temp,
            spec.what,
        )  # fmt: skip
        meta = {
            "cache_version": CACHE_VERSION,
            "key": key,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "build_seconds": round(time.perf_counter() - started, 2),
            "name": spec.name,
            "image_size": spec.image_size,
            "source": spec.source,
            "settings": material["settings"],
            "source_count": len(material["sources"]),
            "arrays": built.arrays,
            "manifest": built.manifest,
            "skipped": built.skipped,
            "upscaled": built.upscaled,
        }
        (temp / META_FILE).write_text(json.dumps(meta, indent=1))
        _fsync_dir(temp)
        temp.rename(entry)  # atomic: the entry is complete or absent
        _fsync_dir(cache_dir)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
