"""Benchmark: training throughput (images a second) of the paper's network through the project's
own training path, fp32 and mixed bfloat16, for the GPU target.

    KERAS_BACKEND=jax python bench/bench_gpu_throughput.py          # 256x256, batch 64 (GPU)
    python bench/bench_gpu_throughput.py --image-size 64 --images 256 --batch-size 32   # CPU check

`colorize.train.train` fits `colorize.model.build_model()` on compact LAB arrays (uint8 L, int8
a/b, as the dataset cache holds them) streamed by `LabBatches`, for `--epochs` timed epochs after
one warm-up epoch (graph tracing and compilation). Throughput = training images / median epoch
time. Targets (docs/BENCHMARKS.md): at least 2,940 img/s fp32 (Keras 3 on JAX, H200), aiming at
6,420 img/s bf16 (hand-written PyTorch).
"""

from __future__ import annotations

import argparse
import statistics
import time

from colorize.backend import import_keras_quietly

import_keras_quietly()
import keras  # noqa: E402
import numpy as np  # noqa: E402

from colorize.data import LabData  # noqa: E402
from colorize.model import build_model  # noqa: E402
from colorize.train import set_precision, train  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def synthetic_data(images: int, size: int) -> LabData:
    """Random compact LAB arrays: throughput does not depend on the pictures."""
    rng = np.random.default_rng(0)
    lightness = rng.integers(0, 256, (images, size, size, 1), dtype=np.uint8)
    ab = rng.integers(-60, 60, (images, size, size, 2), dtype=np.int8)
    val = max(1, images // 16)
    return LabData("synthetic", size, lightness, ab, lightness[:val], ab[:val])


def measure(data: LabData, batch_size: int, epochs: int, mixed: bool) -> float:
    keras.utils.clear_session()
    set_precision(mixed)
    model = build_model(image_size=data.image_size)
    timer = EpochTimer()
    train(model, data, optimizer="adamax", batch_size=batch_size, epochs=epochs + 1,
          patience=epochs + 1, callbacks=[timer])  # fmt: skip
    set_precision(False)
    # Each epoch also runs validation on 1/16 of the images: count those as well.
    seen = len(data.train_l) + len(data.val_l)
    return seen / statistics.median(timer.times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after a warm-up)")
    args = parser.parse_args()
    data = synthetic_data(args.images, args.image_size)
    print(f"backend {keras.backend.backend()}, devices: {keras.distribution.list_devices()}")
    print(f"paper network, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"{args.images} images")  # fmt: skip
    for mixed in (False, True):
        rate = measure(data, args.batch_size, args.epochs, mixed)
        print(f"{'mixed bf16' if mixed else 'fp32':>10}: {rate:,.0f} img/s")


if __name__ == "__main__":
    main()
