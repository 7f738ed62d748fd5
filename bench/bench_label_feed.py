"""Benchmark: what the exact accuracy label costs in the training feed, 3 against 4 bytes a pixel.

    python bench/bench_label_feed.py                     # 64x64, batch 16: about 1-2 min on 2 cores
    python bench/bench_label_feed.py --image-size 256 --batch-size 64 --crops-per-photo 48 \\
        --rounds 7                                       # GPU scale (KERAS_BACKEND=jax on a GPU)
    python bench/bench_label_feed.py --image-size 256 --batch-size 64 --crops-per-photo 48 \\
        --gather-only                                    # the feed alone at GPU scale, on a CPU

The same compact data (the embedded photos' crops, built into a dataset cache by
`colorize.cache.load_dataset_cached` and memory-mapped from it, as a study reads them) fed two
ways, side by side in one run:

- before: 3 bytes a pixel, uint8 L in and int8 targets (B, S, S, 2) = a, b, gathered by
  `LabBatches` from an a/b array of their own (as the cache stored them before the label
  existed), with the loss and the `CategoricalAccuracy` metric it was compiled with then;
- now: 4 bytes a pixel, targets (B, S, S, 3) = a, b, label, gathered by `LabBatches` from the
  cache's target array (a, b and label side by side: one gather), compiled by
  `colorize.train.compile_model` (the same loss, `label_accuracy`).

1. Gather: every shuffled training batch of `--gather-passes` epochs is taken from both feeds in
   turn (same seed, so the same picks), timed per batch; prints the median and mean per batch
   and the bytes a batch sends to the device.
2. Fit: `model.fit` of the paper's network (`build_model` behind `compact_input_model`, built
   with the same seed for both, so the same weights) on each feed, no validation. Each model is
   fitted once untimed (tracing), then `--rounds` rounds fit one epoch of `--steps` batches on
   each feed, which goes first alternating (so a slower machine later in the run hurts neither
   side more); img/s = images of the epoch / its time (epoch begin to end), medians printed, and
   the median of the rounds' now/before ratios. `--gather-only` skips this part.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from colorize.backend import import_keras_quietly

import_keras_quietly(will_seed=True)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from colorize.batches import LabBatches  # noqa: E402
from colorize.cache import load_dataset_cached  # noqa: E402
from colorize.datasets import DatasetSpec  # noqa: E402
from colorize.model import build_model  # noqa: E402
from colorize.train import (  # noqa: E402
    compact_input_model,
    compact_target_mse,
    compile_model,
    make_optimizer,
)

FEEDS = ("before", "now")


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def two_channel_copy(data, folder: Path) -> np.ndarray:
    """The a/b channels as an array of their own, memory-mapped: the layout before the label."""
    path = folder / "train_ab.npy"
    np.save(path, np.ascontiguousarray(data.train_ab))
    return np.load(path, mmap_mode="r")


def make_feeds(data, ab: np.ndarray, batch_size: int, seed: int) -> dict[str, LabBatches]:
    """Both feeds over the same crops, shuffled by the same seed (the same picks)."""
    return {
        "before": LabBatches(data.train_l, ab, batch_size, shuffle=True, seed=seed),
        "now": LabBatches(data.train_l, data.train_target, batch_size, shuffle=True, seed=seed),
    }


def measure_gather(data, ab, batch_size: int, passes: int) -> dict[str, dict]:
    feeds = make_feeds(data, ab, batch_size, seed=1)
    times: dict[str, list[float]] = {feed: [] for feed in FEEDS}
    sent = {}
    for _ in range(passes):
        for index in range(len(feeds["now"])):
            for feed in FEEDS:  # in turn, batch by batch: drift hurts both alike
                started = time.perf_counter()
                lightness, targets = feeds[feed][index]
                times[feed].append(time.perf_counter() - started)
                sent[feed] = (lightness.nbytes + targets.nbytes, targets.shape)
        for batches in feeds.values():
            batches.on_epoch_end()
    return {
        feed: {
            "median_us": statistics.median(times[feed]) * 1e6,
            "mean_us": statistics.mean(times[feed]) * 1e6,
            "bytes": sent[feed][0],
            "targets": sent[feed][1],
            "batches": len(times[feed]),
        }
        for feed in FEEDS
    }


def compiled_model(feed: str, image_size: int, seed: int) -> keras.Model:
    """The paper's network behind the compact input, compiled as for `feed`; the same weights
    for both feeds (same seed)."""
    keras.utils.set_random_seed(seed)
    model = compact_input_model(build_model(image_size=image_size))
    if feed == "now":
        compile_model(model, "adamax", 1e-3)
    else:  # as the project compiled it before the label: accuracy from the int8 a/b
        model.compile(
            optimizer=make_optimizer("adamax", 1e-3),
            loss=compact_target_mse,
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
    return model


def measure_fit(data, ab, image_size: int, batch_size: int, steps: int | None, rounds: int):
    feeds = make_feeds(data, ab, batch_size, seed=0)
    steps = min(steps or len(feeds["now"]), len(feeds["now"]))
    keras.utils.clear_session()
    models = {feed: compiled_model(feed, image_size, seed=0) for feed in FEEDS}
    same = all(
        np.array_equal(a, b)
        for a, b in zip(models["before"].get_weights(), models["now"].get_weights(), strict=True)
    )
    assert same, "the two models start from different weights"

    def fit(feed: str) -> float:
        timer = EpochTimer()
        models[feed].fit(
            feeds[feed], epochs=1, steps_per_epoch=steps, callbacks=[timer], verbose=0
        )
        return timer.times[0]

    started = time.perf_counter()
    for feed in FEEDS:  # tracing and compilation, not timed
        fit(feed)
    warm_up = time.perf_counter() - started
    speeds: dict[str, list[float]] = {feed: [] for feed in FEEDS}
    for round_ in range(rounds):
        for feed in FEEDS if round_ % 2 == 0 else FEEDS[::-1]:
            speeds[feed].append(steps * batch_size / fit(feed))
    return steps, warm_up, speeds


def devices() -> str:
    try:
        return ", ".join(str(d) for d in keras.distribution.list_devices())
    except (AttributeError, NotImplementedError):  # torch has no distribution API
        return "not listed by this backend"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--crops-per-photo", type=int, default=16, help="training crops a photo (data size)"
    )
    parser.add_argument("--gather-passes", type=int, default=20, help="epochs of batches gathered")
    parser.add_argument("--steps", type=int, help="batches a timed epoch (default: all)")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs of each feed")
    parser.add_argument("--gather-only", action="store_true", help="no fit: the feed alone")
    parser.add_argument("--cache-dir", type=Path, help="keep the dataset cache here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-label-feed-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        spec = DatasetSpec(
            "embedded", image_size=args.image_size, crops_per_photo=args.crops_per_photo
        )
        data = load_dataset_cached(cache_dir, spec)  # memmaps, as a study's trials read them
        ab = two_channel_copy(data, Path(tmp))
        gather = measure_gather(data, ab, args.batch_size, args.gather_passes)
        steps, warm_up, speeds = 0, 0.0, {}
        if not args.gather_only:
            steps, warm_up, speeds = measure_fit(
                data, ab, args.image_size, args.batch_size, args.steps, args.rounds
            )
        train_images = len(data.train_l)
        del data, ab  # closes the memmaps before the folder goes

    report(args, train_images, gather, steps, warm_up, speeds)


def report(args, train_images: int, gather: dict, steps: int, warm_up: float, speeds: dict):
    size, batch = args.image_size, args.batch_size
    fit = f"fit {steps} steps an epoch, {args.rounds} round(s) after a {warm_up:.0f} s warm-up"
    if args.gather_only:
        fit = "no fit"
    print(f"command:  {shlex.join(['python', *sys.argv])}")
    print(
        f"machine:  {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPU core(s); Keras {keras.__version__} on "
        f"{keras.backend.backend()} ({devices()})"
    )
    print(
        f"sizes:    {size}x{size}, batch {batch}, {train_images} training crops (embedded "
        f"photos, {args.crops_per_photo} a photo) memory-mapped from the cache; gather "
        f"{gather['now']['batches']} batches a feed; {fit}"
    )
    print(f"\n{'':<24} {'before (3 B/px)':>16} {'now (4 B/px)':>16} {'now/before':>11}")

    def row(label: str, before: float, now: float, unit: str) -> None:
        ratio = f"{now / before:.3f}x" if before else "-"
        print(f"{label:<24} {before:>12,.1f} {unit:<3} {now:>12,.1f} {unit:<3} {ratio:>11}")

    shapes = {feed: "x".join(map(str, gather[feed]["targets"])) for feed in FEEDS}
    print(f"{'targets (int8)':<24} {shapes['before']:>16} {shapes['now']:>16}")
    sent = {feed: gather[feed]["bytes"] for feed in FEEDS}
    row("bytes sent a batch", sent["before"] / 1024, sent["now"] / 1024, "KiB")
    row("bytes a pixel", sent["before"] / (batch * size**2), sent["now"] / (batch * size**2), "B")
    row("gather a batch, median", gather["before"]["median_us"], gather["now"]["median_us"], "us")
    row("gather a batch, mean", gather["before"]["mean_us"], gather["now"]["mean_us"], "us")
    if args.gather_only:
        return
    medians = {feed: statistics.median(speeds[feed]) for feed in FEEDS}
    row("fit, median img/s", medians["before"], medians["now"], "")
    ratios = [now / before for before, now in zip(speeds["before"], speeds["now"], strict=True)]
    print(
        f"\nfit img/s per round: before {', '.join(f'{v:.1f}' for v in speeds['before'])}; "
        f"now {', '.join(f'{v:.1f}' for v in speeds['now'])}"
    )
    print(
        f"now/before per round: median {statistics.median(ratios):.3f}x "
        f"(range {min(ratios):.3f}-{max(ratios):.3f})"
    )


if __name__ == "__main__":
    main()
