"""Benchmark: batched uint8 sRGB -> LAB against the report's per-image scikit-image loop.

    python bench/bench_convert.py [--photos 1000] [--size 256] [--repeats 3]

The photos are seeded random crops (with flips) of the embedded default photos, as the datasets
make their validation crops (`colorize.datasets.augment.random_crops`; training crops may also be
rotated, which does not change the conversion). Timed side by side in one run, `--repeats` times
after a warm-up round, medians printed:

- baseline (the report's approach): a Python loop of `skimage.color.rgb2lab(img / 255)` per
  photo, each result stored in a float32 array;
- fast, float: `colorize.lab.rgb_uint8_to_lab_fast` on the whole batch (one thread);
- fast, compact: `colorize.lab.convert_rgb_batch` (chunks in a thread pool, straight to uint8 L
  and int8 a/b with `rgb_uint8_to_compact`, the conversion the dataset builder runs on each
  photo's crops; the builder also asks it for the accuracy label, not timed here).

Also prints the largest difference to scikit-image per channel (L, a, b) in LAB units, for the
float output and for the compact output after decoding (that one includes quantization).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from skimage import color  # noqa: E402

from colorize import lab  # noqa: E402
from colorize.datasets import embedded_arrays  # noqa: E402
from colorize.datasets.augment import random_crops  # noqa: E402


def make_photos(count: int, size: int, seed: int = 0) -> np.ndarray:
    photos = embedded_arrays()
    names = sorted(photos)
    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        out[i] = random_crops(photos[names[i % len(names)]], size, 1, rng)[0]
    return out


def baseline(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape, dtype=np.float32)
    for i, image in enumerate(rgb):
        out[i] = color.rgb2lab(image / 255)
    return out


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s)")
    rgb = make_photos(args.photos, args.size)
    print(f"{args.photos} photos at {args.size}x{args.size} (crops of the embedded photos)")
    runs = []
    # round 0 is a warm-up, not counted: the first touch of fresh memory in this VM costs
    # several times more than later ones, and it would fall on whichever method runs first
    for repeat in range(-1, args.repeats):
        t_base, reference = timed(baseline, rgb)
        t_float, fast = timed(lab.rgb_uint8_to_lab_fast, rgb)
        t_compact, (compact_l, compact_ab) = timed(lab.convert_rgb_batch, rgb)
        if repeat < 0:
            continue
        runs.append((t_base, t_float, t_compact))
        print(
            f"  repeat {repeat + 1}: baseline {t_base:.2f} s, fast float {t_float:.2f} s, "
            f"fast compact {t_compact:.2f} s -> {t_base / t_compact:.1f}x"
        )
    t_base, t_float, t_compact = (statistics.median(r[i] for r in runs) for i in range(3))
    per_photo = 1000 / args.photos
    print(f"baseline (per-photo skimage loop): {t_base:.2f} s ({t_base * per_photo:.2f} ms/photo)")
    print(
        f"fast float (one thread):           {t_float:.2f} s ({t_float * per_photo:.2f} ms/photo)"
    )
    print(
        f"fast compact (thread pool):        {t_compact:.2f} s ({t_compact * per_photo:.2f} ms/photo)"
    )
    ratios = [r[0] / r[2] for r in runs]
    print(
        f"speed-up, compact vs baseline: {statistics.median(ratios):.1f}x median of "
        f"{args.repeats} (range {min(ratios):.1f}-{max(ratios):.1f}; target >= 5x)"
    )
    print(
        f"speed-up, float one thread vs baseline: {statistics.median(r[0] / r[1] for r in runs):.1f}x"
    )
    float_dev = np.abs(fast - reference).max(axis=(0, 1, 2))
    decoded = np.concatenate([lab.decode_l(compact_l), lab.decode_ab(compact_ab)], axis=-1)
    compact_dev = np.abs(decoded - reference).max(axis=(0, 1, 2))
    print(
        "max |fast - skimage| per channel L, a, b: "
        + ", ".join(f"{v:.2e}" for v in float_dev)
        + " (target <= 0.5)"
    )
    print(
        "max |decoded compact - skimage| per channel L, a, b: "
        + ", ".join(f"{v:.3f}" for v in compact_dev)
        + " (quantization: L step 100/255, a/b step 1)"
    )


if __name__ == "__main__":
    main()
