"""Convert once: a dataset's compact LAB arrays cached on disk, memory-mapped by every trial.

`load_dataset_cached` returns the same `LabData` as `colorize.data.load_dataset`, but the LAB
conversion happens once per dataset and settings. The arrays (train_l, train_ab, val_l, val_ab)
are `.npy` files opened with `np.load(mmap_mode="r")`, beside a `meta.json` holding the manifest,
the skipped files, the name, the image size and each file's size and CRC-32.

Layout: `<cache_dir>/<folder|embedded>-<image_size>-<key[:16]>/{meta.json, train_l.npy, train_ab.npy, val_l.npy,
val_ab.npy}`. The key is a SHA-256 over what the arrays are made from:

- the sources: for a folder, each image file's relative path and SHA-256 (hashing a file is far
  cheaper than decoding it); for the embedded default, each packaged photo's array hash;
- the settings that change the arrays: image_size and the split seed, plus val_fraction for a
  folder or crops_per_photo and val_photos for the embedded set (a setting the source kind does
  not read does not split the cache);
- `CACHE_VERSION` (bump it when conversion, cropping or encoding code changes) and Pillow's
  version (it resizes).

A cache is never trusted blindly: it is built in a temporary folder and renamed into place only
when complete, and on load the JSON, every file's size, shape and dtype and (by default) every
file's CRC-32 are checked. A missing, truncated, corrupted or half-written cache is logged, removed
and rebuilt. Builds of one key are serialized with a file lock, so parallel workers build once.

A folder is built streaming: photos are decoded and converted a window at a time and written to
disk, so memory stays bounded however many photos there are (10,000 photos at 256x256 are a
2 GB cache). The returned memmaps hand pages they have served back to the page cache every
`RELEASE_BYTES`, so reading the dataset epoch after epoch does not grow the process's RSS.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import mmap
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from colorize import images, lab
from colorize.data import (
    EMBEDDED_NAME,
    DataError,
    LabData,
    _split_indices,
    check_folder,
    check_usable,
    embedded_photos,
    load_embedded,
)

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when conversion, cropping, resizing or encoding code changes
ARRAYS = ("train_l", "train_ab", "val_l", "val_ab")
META_FILE = "meta.json"
RELEASE_BYTES = 64 << 20  # a memmap unmaps the pages it served after about this many bytes
FAULT_SPAN = 2 << 20  # what one page fault may map beyond the bytes read (a large folio)
_CHUNK = 16 << 20  # bytes per read when checksumming or copying
_WINDOW = 64  # photos decoded at a time (bounds memory while building a folder)


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


def dataset_key(
    train_dir: str | None,
    image_size: int,
    *,
    val_fraction: float = 0.1,
    crops_per_photo: int = 16,
    val_photos: int = 3,
    seed: int = 0,
) -> tuple[str, dict]:
    """The cache key of a dataset and its settings, without decoding any photo.

    Returns:
        The key (SHA-256 hex) and what it was computed from (sources and settings).

    Raises:
        DataError: `train_dir` is given but is not a folder.
    """
    settings: dict = {"image_size": int(image_size), "seed": int(seed)}
    if train_dir:
        folder = check_folder(train_dir, "training")
        files = images.list_images(folder)
        sources = [[str(p.relative_to(folder)), images.file_sha256(p)] for p in files]
        kind = "folder"
        settings["val_fraction"] = float(val_fraction)
    else:
        photos = embedded_photos()
        sources = [[name, images.array_sha256(photos[name])] for name in sorted(photos)]
        kind = EMBEDDED_NAME
        settings |= {"crops_per_photo": int(crops_per_photo), "val_photos": int(val_photos)}
    material = {
        "cache_version": CACHE_VERSION,
        "pillow": _pillow_version(),
        "kind": kind,
        "settings": settings,
        "sources": sources,
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest(), material


def _entry_name(train_dir: str | None, key: str, image_size: int) -> str:
    """The entry's folder name: content only (a moved or renamed photo folder keeps it)."""
    return f"{'folder' if train_dir else EMBEDDED_NAME}-{image_size}-{key[:16]}"


# --- writing -------------------------------------------------------------------------------------
class _NpyWriter:
    """Writes a `.npy` file row block by row block with plain file writes (no mapping, so the
    pages written never count in this process's RSS), keeping a CRC-32 of every byte."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]):
        self.path, self.dtype, self.shape = path, np.dtype(dtype), tuple(int(s) for s in shape)
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            header,
            {
                "descr": np.lib.format.dtype_to_descr(self.dtype),
                "fortran_order": False,
                "shape": self.shape,
            },
        )
        self.handle = open(path, "wb")  # noqa: SIM115  (closed in close())
        self.crc = 0
        self.rows = 0
        self._write(header.getvalue())

    def _write(self, data) -> None:
        self.crc = zlib.crc32(data, self.crc)
        self.handle.write(data)

    def write(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.shape[1:]:
            raise ValueError(f"{self.path.name}: rows of shape {rows.shape[1:]} != {self.shape}")
        self._write(memoryview(rows).cast("B"))
        self.rows += len(rows)

    def close(self) -> dict:
        if self.rows != self.shape[0]:
            raise RuntimeError(f"{self.path.name}: wrote {self.rows} rows of {self.shape[0]}")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return {
            "file": self.path.name,
            "shape": list(self.shape),
            "dtype": self.dtype.str,
            "bytes": self.path.stat().st_size,
            "crc32": self.crc,
        }


def _write_arrays(folder: Path, arrays: dict[str, np.ndarray]) -> dict:
    described = {}
    for name, array in arrays.items():
        writer = _NpyWriter(folder / f"{name}.npy", array.dtype, array.shape)
        step = max(1, _CHUNK // max(1, array[:1].nbytes))
        for start in range(0, len(array), step):
            writer.write(array[start : start + step])
        described[name] = writer.close()
    return described


def _prepare_photo(path: Path, image_size: int):
    """Decode one file -> ("unreadable" | "grayscale" | "kept", L, a/b, upscaled, reason)."""
    try:
        rgb = images.read_rgb(path)
    except images.UnreadableImage as error:
        return "unreadable", None, None, False, str(error)
    if images.is_grayscale(rgb):
        return "grayscale", None, None, False, ""
    upscaled = min(rgb.shape[:2]) < image_size
    if upscaled:
        log.warning(
            "%s is %dx%d, smaller than image_size %d: upscaled",
            path,
            rgb.shape[1],
            rgb.shape[0],
            image_size,
        )
    square = images.fit_square(rgb, image_size)
    lightness, ab = lab.rgb_uint8_to_compact(square[None])
    return "kept", lightness, ab, upscaled, ""


def _windowed(pool: ThreadPoolExecutor, fn, items: list, window: int) -> Iterator:
    """`pool.map` in order, at most `window` items in flight (bounded memory)."""
    for start in range(0, len(items), window):
        yield from pool.map(fn, items[start : start + window])


def _build_folder(
    folder: Path, image_size: int, val_fraction: float, seed: int, out: Path, hashes: list
) -> dict:
    """Stream a folder's photos into `out`: same arrays, manifest and skips as
    `colorize.data.load_folder`, in bounded memory."""
    files = images.list_images(folder)
    if not files:
        allowed = ", ".join(images.IMAGE_EXTENSIONS)
        raise DataError(f"training folder {folder} holds no image files ({allowed})")
    size = int(image_size)
    skipped: dict[str, list[str]] = {"grayscale": [], "unreadable": []}
    upscaled: list[str] = []
    kept: list[int] = []  # indices into files
    # pass 1: decode, convert and append every usable photo to raw files, in the folder's order
    raw_l, raw_ab = out / "all_l.raw", out / "all_ab.raw"
    workers = min(8, os.cpu_count() or 1)
    with (
        open(raw_l, "wb") as handle_l,
        open(raw_ab, "wb") as handle_ab,
        ThreadPoolExecutor(max_workers=workers) as pool,
    ):
        results = _windowed(pool, lambda p: _prepare_photo(p, size), files, _WINDOW)
        bar = tqdm(
            total=len(files), desc="reading photos", unit="photo", leave=False, disable=None
        )
        for index, (state, lightness, ab, was_upscaled, reason) in enumerate(results):
            bar.update(1)
            relative = str(files[index].relative_to(folder))
            if state == "unreadable":
                log.warning("skipped unreadable image %s", reason)
                skipped["unreadable"].append(relative)
                continue
            if state == "grayscale":
                skipped["grayscale"].append(relative)
                continue
            if was_upscaled:
                upscaled.append(relative)
            handle_l.write(memoryview(lightness).cast("B"))
            handle_ab.write(memoryview(np.ascontiguousarray(ab).view(np.uint8)).cast("B"))
            kept.append(index)
        bar.close()
    check_usable(folder, len(kept), skipped)
    # pass 2: split photos (not crops) and copy each row to its split's file, in order
    train_idx, val_idx = _split_indices(len(kept), val_fraction, seed)
    is_val = np.zeros(len(kept), dtype=bool)
    is_val[val_idx] = True
    writers = {
        "train_l": _NpyWriter(out / "train_l.npy", np.uint8, (len(train_idx), size, size, 1)),
        "train_ab": _NpyWriter(out / "train_ab.npy", np.int8, (len(train_idx), size, size, 2)),
        "val_l": _NpyWriter(out / "val_l.npy", np.uint8, (len(val_idx), size, size, 1)),
        "val_ab": _NpyWriter(out / "val_ab.npy", np.int8, (len(val_idx), size, size, 2)),
    }
    rows_per_read = max(1, _CHUNK // (size * size * 2))
    with open(raw_l, "rb") as handle_l, open(raw_ab, "rb") as handle_ab:
        for start in range(0, len(kept), rows_per_read):
            count = min(rows_per_read, len(kept) - start)
            block_l = np.frombuffer(handle_l.read(count * size * size), np.uint8)
            block_ab = np.frombuffer(handle_ab.read(count * size * size * 2), np.int8)
            block_l = block_l.reshape(count, size, size, 1)
            block_ab = block_ab.reshape(count, size, size, 2)
            mask = is_val[start : start + count]
            writers["train_l"].write(block_l[~mask])
            writers["train_ab"].write(block_ab[~mask])
            writers["val_l"].write(block_l[mask])
            writers["val_ab"].write(block_ab[mask])
    raw_l.unlink()
    raw_ab.unlink()
    arrays = {name: writer.close() for name, writer in writers.items()}
    split = {i: "train" for i in train_idx} | {i: "validation" for i in val_idx}
    digests = dict(hashes)
    manifest = [
        {
            "file": str(files[index].relative_to(folder)),
            "sha256": digests[str(files[index].relative_to(folder))],
            "split": split[position],
            "crops": 1,
        }
        for position, index in enumerate(kept)
    ]
    return {"arrays": arrays, "manifest": manifest, "skipped": skipped, "upscaled": upscaled}


def _build_embedded(
    image_size: int, crops_per_photo: int, val_photos: int, seed: int, out: Path
) -> dict:
    data = load_embedded(
        image_size, crops_per_photo=crops_per_photo, val_photos=val_photos, seed=seed
    )
    arrays = _write_arrays(out, {name: getattr(data, name) for name in ARRAYS})
    return {"arrays": arrays, "manifest": data.manifest, "skipped": {}, "upscaled": []}


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


@contextlib.contextmanager
def _locked(lock_path: Path):
    """An exclusive lock across processes (POSIX); elsewhere builds are only atomic."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _to_data(
    meta: dict, arrays: dict, entry: Path, key: str, built: bool, train_dir: str | None
) -> CachedLabData:
    if train_dir:  # paths are stored relative, so a moved folder keeps its cache
        folder = Path(train_dir).expanduser()
        name = str(folder)
        skipped = {k: [str(folder / f) for f in v] for k, v in meta["skipped"].items()}
        upscaled = [str(folder / f) for f in meta["upscaled"]]
    else:
        name, skipped, upscaled = EMBEDDED_NAME, {}, []
    return CachedLabData(
        name=name,
        image_size=int(meta["image_size"]),
        **arrays,
        manifest=meta["manifest"],
        skipped=skipped,
        upscaled=upscaled,
        cache_path=entry,
        key=key,
        built=built,
    )


def load_dataset_cached(
    cache_dir: str | Path,
    train_dir: str | None,
    image_size: int,
    *,
    val_fraction: float = 0.1,
    crops_per_photo: int = 16,
    val_photos: int = 3,
    seed: int = 0,
    verify: bool = True,
) -> CachedLabData:
    """`colorize.data.load_dataset`, converted once and memory-mapped from `cache_dir`.

    Args:
        cache_dir: where cache entries live (created if missing); shared by studies and trials.
        train_dir, image_size, val_fraction, crops_per_photo, val_photos, seed: as in
            `load_dataset`.
        verify: check every cached file's CRC-32 on load (sizes, shapes and dtypes are always
            checked).

    Returns:
        A `LabData` (a `CachedLabData`) whose arrays are read-only memmaps; `.built` says
        whether this call converted the photos.

    Raises:
        DataError: as `load_dataset` (missing or empty folder, fewer than two usable photos).
    """
    cache_dir = Path(cache_dir).expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    key, material = dataset_key(
        train_dir,
        image_size,
        val_fraction=val_fraction,
        crops_per_photo=crops_per_photo,
        val_photos=val_photos,
        seed=seed,
    )
    entry = cache_dir / _entry_name(train_dir, key, image_size)
    with _locked(cache_dir / f".{entry.name}.lock"):
        if entry.exists():
            try:
                meta, arrays = read_entry(entry, key, verify=verify)
                return _to_data(meta, arrays, entry, key, False, train_dir)
            except CacheInvalid as reason:
                log.warning("dataset cache %s is invalid (%s): rebuilding", entry, reason)
                _remove(entry)
        for stale in cache_dir.glob(f".tmp-{entry.name}-*"):  # a killed build's leftovers
            shutil.rmtree(stale, ignore_errors=True)
        temp = cache_dir / f".tmp-{entry.name}-{uuid.uuid4().hex[:8]}"
        temp.mkdir()
        try:
            started = time.perf_counter()
            if train_dir:
                folder = check_folder(train_dir, "training")
                built = _build_folder(
                    folder, image_size, val_fraction, seed, temp, material["sources"]
                )
            else:
                built = _build_embedded(image_size, crops_per_photo, val_photos, seed, temp)
            meta = {
                "cache_version": CACHE_VERSION,
                "key": key,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "build_seconds": round(time.perf_counter() - started, 2),
                "name": str(train_dir) if train_dir else EMBEDDED_NAME,
                "image_size": int(image_size),
                "kind": material["kind"],
                "settings": material["settings"],
                "source_count": len(material["sources"]),
                **built,
            }
            (temp / META_FILE).write_text(json.dumps(meta, indent=1))
            _fsync_dir(temp)
            temp.rename(entry)  # atomic: the entry is complete or absent
            _fsync_dir(cache_dir)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        meta, arrays = read_entry(entry, key, verify=False)  # just written and checksummed
        return _to_data(meta, arrays, entry, key, True, train_dir)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a folder
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
