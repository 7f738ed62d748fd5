"""Benchmark: peak memory of preprocessing into the cache plus one training epoch, at 10,000 photos.

    python bench/bench_memory.py                      # 10,000 photos (about 10 minutes here)
    python bench/bench_memory.py --photos 2000        # quicker
    python bench/bench_memory.py --keep --workdir /tmp/bench-memory   # reuse the photos next time

1. Writes `--photos` realistic JPEGs (~300x300; seeded random crops, flips and colour jitter of the
   embedded photos) into a folder, 1,000 per subfolder, so the folder path is what is measured.
2. In a child process (fresh, so its peak RSS is its own): `colorize.cache.load_dataset_cached`
   builds the cache of the folder at `--size` (decode, crop, resize, convert, write), then
   `colorize.train.train` runs one epoch, batches streamed by `colorize.batches.LabBatches` from
   the memory-mapped cache. Folders now get `crops_per_photo` crops a photo like the other
   sources; this bench asks for 1, as folders had before, so its figures stay comparable (each
   validation photo gives 2 crops, and the cache holds 4 bytes a pixel with the accuracy label,
   not 3).
   The model is small on purpose (two 3x3 convolutions, 1 -> 8 -> 2 channels): the paper's
   network trains at about 2 img/s on this CPU, so an epoch of 10,000 photos would take over an
   hour, and the model's own memory does not grow with the dataset; what does is the data path.
3. In another child, a fresh process reloads the cache (with and without CRC-32 checks).
4. The in-memory approach (the report's: every photo held as float arrays) in children at
   `--baseline-photos` (default 500 and 1,000): decode and resize all, `np.array(X, dtype=float)`
   and `1/255 * X` (float64 RGB, as the report's script), per-photo `skimage.color.rgb2lab` into
   float32 network arrays (L/100 and a/b/128), then one epoch of `model.fit` on them (10%
   validation split). Its peak grows linearly with the photos, so it is extrapolated to
   `--photos` from a straight line through those points.

Peak RSS is the kernel's high-water mark of the child (VmHWM in /proc/self/status; the same as
`resource.getrusage(...).ru_maxrss` except that Linux carries ru_maxrss over from the parent
across exec), which counts mapped file pages (TensorFlow's shared libraries, the memmaps) too; a sampler thread (every 20 ms) splits the peaks per phase into
anonymous memory (RssAnon) and mapped file pages (RssFile). Target: peak RSS under 2 GB for
preprocessing plus one epoch at 10,000 photos.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MB = 1 << 20
PHOTO_VERSION = 1  # bump when the photo generator changes (the folder is regenerated)


# --- measuring --------------------------------------------------------------------------------
def status_kb() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile of this process in KB (Linux)."""
    found = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


def mapped_kb(marker: str) -> int:
    """Resident KB of this process's mappings of files whose path contains `marker` (smaps)."""
    total, counting = 0, False
    with open("/proc/self/smaps") as handle:
        for line in handle:
            if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                counting = marker in line  # a mapping's header line: address range ... path
            elif counting and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


class PeakSampler(threading.Thread):
    """Samples RSS every `interval` s and keeps the peaks of the current phase; with `marker`,
    also the resident pages of mapped files whose path contains it (the cache's memmaps)."""

    def __init__(self, interval: float = 0.02, marker: str | None = None):
        super().__init__(daemon=True)
        self.interval, self.marker = interval, marker
        self.lock = threading.Lock()
        self.peaks: dict[str, int] = {}
        self.stopped = threading.Event()
        self.count = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        now = status_kb()
        self.count += 1
        if self.marker and self.count % 5 == 0:  # smaps is slower to read: every 5th sample
            now["CacheMapped"] = mapped_kb(self.marker)
        with self.lock:
            for key in ("VmRSS", "RssAnon", "RssFile", "CacheMapped"):
                if key in now:
                    self.peaks[key] = max(self.peaks.get(key, 0), now[key])

    def phase(self) -> dict[str, float]:
        """The peaks since the last call, in MB, and start a new phase."""
        self.sample()
        with self.lock:
            peaks, self.peaks = self.peaks, {}
        return {f"peak_{k.lower()}_mb": round(v / 1024, 1) for k, v in peaks.items()}


def max_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not `ru_maxrss`: Linux carries that across exec, so a
    child started from a bigger parent would report the parent's size."""
    return round(status_kb()["VmHWM"] / 1024, 1)


# --- photos -----------------------------------------------------------------------------------
def jittered_photo(source, rng, side: int):
    """A random square crop (half the shorter side to all of it), resized to `side`, maybe
    flipped, with per-channel gain, brightness and saturation jitter."""
    import numpy as np

    from colorize import images

    height, width = source.shape[:2]
    shorter = min(height, width)
    crop = int(rng.integers(shorter // 2, shorter + 1))
    top = int(rng.integers(0, height - crop + 1))
    left = int(rng.integers(0, width - crop + 1))
    rgb = images.resize(source[top : top + crop, left : left + crop], side, side)
    rgb = rgb.astype(np.float32)
    if rng.random() < 0.5:
        rgb = rgb[:, ::-1]
    gray = rgb.mean(axis=-1, keepdims=True)
    rgb = gray + (rgb - gray) * rng.uniform(0.7, 1.3)  # saturation
    rgb = rgb * rng.uniform(0.85, 1.15, size=3) + rng.uniform(-20, 20)  # white balance, brightness
    return np.clip(rgb, 0, 255).astype(np.uint8)


def make_photo_folder(folder: Path, count: int, side: int, seed: int = 0) -> float:
    """Write `count` JPEGs under `folder` (reused when a marker says they are these); seconds."""
    import numpy as np
    from PIL import Image

    from colorize.datasets import embedded_arrays

    marker = folder / "photos.json"
    wanted = {"count": count, "side": side, "seed": seed, "version": PHOTO_VERSION}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    photos = embedded_arrays()
    names = sorted(photos)

    def write(index: int) -> None:
        rng = np.random.default_rng([seed, index])
        rgb = jittered_photo(photos[names[index % len(names)]], rng, side)
        path = folder / f"{index // 1000:04d}" / f"photo-{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path, quality=90)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(write, range(count)))
    marker.write_text(json.dumps(wanted))
    return time.perf_counter() - started


# --- children ---------------------------------------------------------------------------------
def folder_spec(args):
    """The dataset of the photo folder. crops_per_photo=1: folders now get that many crops a
    photo like the other sources, and one crop each is what they had before, so the memory
    figures stay comparable with earlier runs of this bench."""
    from colorize.datasets import DatasetSpec

    return DatasetSpec(
        source="folder", folder=str(args.folder), image_size=args.size, crops_per_photo=1
    )


def small_model(size: int):
    import keras

    return keras.Sequential(
        [
            keras.Input((size, size, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(2, 3, padding="same", activation="tanh"),
        ]
    )


def child_cached(args) -> dict:
    """Build the cache (or reuse it), then one epoch streamed from the memmaps."""
    from colorize import cache

    if args.release_bytes is not None:
        cache.RELEASE_BYTES = args.release_bytes
    sampler = PeakSampler(marker=str(Path(args.cache_dir).resolve()))
    sampler.start()
    result = {"rss_after_imports_mb": round(status_kb()["VmRSS"] / 1024, 1)}
    sampler.phase()
    started = time.perf_counter()
    data = cache.load_dataset_cached(args.cache_dir, folder_spec(args))
    result["preprocess"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "built": data.built,
        "train": len(data.train_l),
        "val": len(data.val_l),
        "cache_mb": round(sum(f.stat().st_size for f in data.cache_path.iterdir()) / MB, 1),
        "max_rss_mb": max_rss_mb(),
        **sampler.phase(),
    }
    started = time.perf_counter()
    from colorize.train import train

    model = small_model(args.size)
    result["keras_import_and_model"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "max_rss_mb": max_rss_mb(),
        **sampler.phase(),
    }
    started = time.perf_counter()
    fit = train(model, data, epochs=1, batch_size=16, patience=1, seed=0)
    result["epoch"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "images_per_s": round(len(data.train_l) / (time.perf_counter() - started), 1),
        "val_loss": round(fit.history["val_loss"][-1], 5),
        "max_rss_mb": max_rss_mb(),
        **sampler.phase(),
    }
    result["max_rss_mb"] = max_rss_mb()
    return result


def drop_from_page_cache(folder: Path) -> None:
    """Evict a folder's files from the page cache (POSIX_FADV_DONTNEED: no root needed, only
    these files), so the next read comes from the disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            handle = os.open(path, os.O_RDONLY)
            try:
                os.fsync(handle)
                os.posix_fadvise(handle, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(handle)


def child_reload(args) -> dict:
    """A fresh process opening the existing cache: from disk (evicted from the page cache)
    with CRC-32 checks, then from the page cache with and without them."""
    from colorize import cache

    result = {}
    drop_from_page_cache(Path(args.cache_dir))
    for key, verify in (
        ("cold_with_crc32_s", True),
        ("warm_with_crc32_s", True),
        ("warm_without_crc32_s", False),
        ("warm_with_crc32_s", True),
        ("warm_without_crc32_s", False),
    ):
        started = time.perf_counter()
        data = cache.load_dataset_cached(args.cache_dir, folder_spec(args), verify=verify)
        assert not data.built, "the cache was rebuilt"
        result.setdefault(key, []).append(round(time.perf_counter() - started, 2))
    started = time.perf_counter()
    cache.dataset_key(folder_spec(args))  # lists the folder and hashes every photo
    result["key_s"] = round(time.perf_counter() - started, 2)
    result["cache_mb"] = round(sum(f.stat().st_size for f in data.cache_path.iterdir()) / MB, 1)
    result["max_rss_mb"] = max_rss_mb()
    return result


def child_in_memory(args) -> dict:
    """The report's approach: every photo as float arrays in memory, then model.fit."""
    import numpy as np
    from skimage import color

    from colorize import images
    from colorize.datasets.photos import walk_images

    sampler = PeakSampler()
    sampler.start()
    started = time.perf_counter()
    files = walk_images(args.folder)[0][: args.photos]
    photos = [images.fit_square(images.read_rgb(path), args.size) for path in files]
    X = np.array(photos, dtype=float)  # noqa: N806  (the report's names)
    Xtrain = 1.0 / 255 * X  # noqa: N806
    inputs = np.empty(X.shape[:3] + (1,), dtype=np.float32)
    targets = np.empty(X.shape[:3] + (2,), dtype=np.float32)
    for i, rgb in enumerate(Xtrain):
        converted = color.rgb2lab(rgb)
        inputs[i] = converted[..., :1] / 100.0
        targets[i] = converted[..., 1:] / 128.0
    result = {
        "photos": len(files),
        "preprocess": {
            "seconds": round(time.perf_counter() - started, 1),
            "max_rss_mb": max_rss_mb(),
            **sampler.phase(),
        },
    }
    import keras

    model = small_model(args.size)
    model.compile(optimizer="adamax", loss="mse", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(inputs, targets, batch_size=16, epochs=1, validation_split=0.1, verbose=0)
    keras.utils.clear_session()
    result["epoch"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "max_rss_mb": max_rss_mb(),
        **sampler.phase(),
    }
    result["max_rss_mb"] = max_rss_mb()
    return result


def run_child(kind: str, args, **extra) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--folder",
        str(args.folder),
        "--cache-dir",
        str(args.cache_dir),
        "--size",
        str(args.size),
    ]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    if args.release_bytes is not None and "release_bytes" not in extra:
        command += ["--release-bytes", str(args.release_bytes)]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"child {kind} failed:\n{out.stderr[-4000:]}")
    line = [row for row in out.stdout.splitlines() if row.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# --- the report -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=256, help="image_size of the dataset")
    parser.add_argument("--source-size", type=int, default=300, help="side of the JPEGs")
    parser.add_argument("--baseline-photos", default="500,1000")
    parser.add_argument("--workdir", type=Path, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the photos and the cache")
    parser.add_argument("--release-bytes", type=int, help="override cache.RELEASE_BYTES")
    parser.add_argument(
        "--child", choices=("cached", "reload", "in_memory"), help=argparse.SUPPRESS
    )
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = {"cached": child_cached, "reload": child_reload, "in_memory": child_in_memory}
        print("RESULT " + json.dumps(run[args.child](args)))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-memory-"))
    args.folder = workdir / f"photos-{args.photos}"
    args.cache_dir = workdir / "cache"
    shutil.rmtree(args.cache_dir, ignore_errors=True)  # the build is part of what is measured
    print(f"machine: {os.cpu_count()} CPU(s); work folder {workdir}")
    seconds = make_photo_folder(args.folder, args.photos, args.source_size)
    print(
        f"photos: {args.photos} JPEGs at {args.source_size}x{args.source_size} in {args.folder}"
        + (f" (written in {seconds:.0f} s)" if seconds else " (reused)")
    )
    try:
        cached = run_child("cached", args)
        pre, epoch = cached["preprocess"], cached["epoch"]
        print(f"\ncached path, {args.photos} photos at {args.size}x{args.size} (one process):")
        print(f"  after imports (no TensorFlow yet): RSS {cached['rss_after_imports_mb']:.0f} MB")
        print(
            f"  preprocessing into the cache: {pre['seconds']:.0f} s, cache {pre['cache_mb']:.0f} MB "
            f"({pre['train']} train / {pre['val']} val); peak RSS {pre['max_rss_mb']:.0f} MB "
            f"(anon {pre.get('peak_rssanon_mb', 0):.0f}, file {pre.get('peak_rssfile_mb', 0):.0f})"
        )
        step = cached["keras_import_and_model"]
        print(f"  import TensorFlow/Keras + model: peak RSS so far {step['max_rss_mb']:.0f} MB")
        print(
            f"  one epoch streamed from the memmaps: {epoch['seconds']:.0f} s "
            f"({epoch['images_per_s']:.0f} img/s); phase peaks: RSS "
            f"{epoch.get('peak_vmrss_mb', 0):.0f} MB (anon {epoch.get('peak_rssanon_mb', 0):.0f}, "
            f"file {epoch.get('peak_rssfile_mb', 0):.0f}, of which cache memmaps "
            f"{epoch.get('peak_cachemapped_mb', 0):.0f})"
        )
        target = "met" if cached["max_rss_mb"] < 2048 else "NOT met"
        print(
            f"  PEAK RSS, preprocessing + one epoch: {cached['max_rss_mb']:.0f} MB "
            f"(target < 2048 MB: {target})"
        )
        reload = run_child("reload", args)
        print(
            f"\nreload in a fresh process ({reload['cache_mb']:.0f} MB cache; peak RSS "
            f"{reload['max_rss_mb']:.0f} MB): from disk with CRC-32 "
            f"{reload['cold_with_crc32_s'][0]:.2f} s; from the page cache with CRC-32 "
            f"{min(reload['warm_with_crc32_s']):.2f} s, sizes/shapes only "
            f"{min(reload['warm_without_crc32_s']):.2f} s (of which the key, hashing the "
            f"photo files: {reload['key_s']:.2f} s)"
        )
        points = []
        for count in [int(c) for c in args.baseline_photos.split(",") if c]:
            base = run_child("in_memory", args, photos=count)
            points.append((base["photos"], base["max_rss_mb"]))
            print(
                f"\nin-memory approach, {base['photos']} photos: preprocessing "
                f"{base['preprocess']['seconds']:.0f} s, peak {base['preprocess']['max_rss_mb']:.0f} MB; "
                f"with one epoch ({base['epoch']['seconds']:.0f} s) peak RSS {base['max_rss_mb']:.0f} MB"
            )
        if len(points) >= 2:
            (n0, m0), (n1, m1) = points[0], points[-1]
            slope = (m1 - m0) / (n1 - n0)
            estimate = m1 + slope * (args.photos - n1)
            print(
                f"  in-memory extrapolated to {args.photos} photos: {estimate / 1024:.1f} GB "
                f"({slope:.2f} MB per photo) vs cached {cached['max_rss_mb'] / 1024:.2f} GB "
                f"measured: {estimate / cached['max_rss_mb']:.0f}x less"
            )
        print("\nRESULTS " + json.dumps({"cached": cached, "reload": reload, "in_memory": points}))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not args.keep:
            shutil.rmtree(args.cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
