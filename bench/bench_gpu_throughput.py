"""Benchmark: training throughput (images a second) of the paper's network through the project's
own training path, fp32 and mixed bfloat16, beside the float32 feed it replaced.

    KERAS_BACKEND=jax python bench/bench_gpu_throughput.py          # 256x256, batch 64 (GPU)
    python bench/bench_gpu_throughput.py --image-size 64 --images 256 --batch-size 32   # CPU check

- compact (the project's path): `colorize.train.train` fits `colorize.model.build_model()` on
  compact LAB arrays (uint8 L, int8 a/b and the uint8 accuracy label, as the dataset cache holds
  them) streamed by `LabBatches` (int8 targets a, b, label) and scaled inside the model and loss,
  on the device: 4 bytes a pixel.
- float32 feed (baseline): the same network, optimizer, batches and the callbacks `train` adds
  (learning-rate logger, per-epoch NaN check, early stopping with best weights), but each batch is
  scaled to float32 on the host first, L and a/b only, with Keras' MSE and `accuracy` as before
  the label existed (12 bytes a pixel cross to the device, not 4).

Each is timed for `--epochs` epochs after one warm-up epoch (tracing and compilation);
throughput = images (training batches, always full, plus validation) / median epoch time. Targets
(docs/BENCHMARKS.md): at least 2,940 img/s fp32 (Keras 3 on JAX, H200), aiming at 6,420 img/s
bf16 (hand-written PyTorch).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from colorize.backend import import_keras_quietly

import_keras_quietly(will_seed=True)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from colorize import lab  # noqa: E402
from colorize.batches import LabBatches, even_batch_size  # noqa: E402
from colorize.datasets import LabData  # noqa: E402
from colorize.model import build_model  # noqa: E402
from colorize.train import (  # noqa: E402
    LearningRateLogger,
    StopOnNonFinite,
    make_optimizer,
    set_precision,
    train,
)


class EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


class FloatBatches(keras.utils.PyDataset):
    """The baseline feed: the same batches, scaled to float32 on the host."""

    def __init__(self, batches: LabBatches):
        super().__init__()
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int):
        lightness, targets = self.batches[index]
        ab = targets[..., :2]  # the label channel is the compact feed's; this one has none
        return lab.scale_l(lab.decode_l(lightness)), lab.ab_to_target(lab.decode_ab(ab))

    def on_epoch_end(self) -> None:
        self.batches.on_epoch_end()


def devices() -> str:
    try:
        return str(keras.distribution.list_devices())
    except (AttributeError, NotImplementedError):  # torch has no distribution API
        return "not listed by this backend"


def synthetic_data(images: int, size: int) -> LabData:
    """Random compact LAB arrays: throughput does not depend on the pictures."""
    rng = np.random.default_rng(0)
    lightness = rng.integers(0, 256, (images, size, size, 1), dtype=np.uint8)
    ab = rng.integers(-60, 60, (images, size, size, 2), dtype=np.int8)
    target = np.concatenate([ab, lab.accuracy_label(ab).view(np.int8)], axis=-1)
    val = max(1, images // 16)
    return LabData("synthetic", size, lightness, target, lightness[:val], target[:val])


def fit_compact(data: LabData, batch_size: int, epochs: int, timer: EpochTimer) -> None:
    model = build_model(image_size=data.image_size)
    train(model, data, optimizer="adamax", batch_size=batch_size, epochs=epochs,
          patience=epochs, callbacks=[timer])  # fmt: skip


def fit_float(data: LabData, batch_size: int, epochs: int, timer: EpochTimer) -> None:
    model = build_model(image_size=data.image_size)
    model.compile(optimizer=make_optimizer("adamax", 1e-3), loss="mse", metrics=["accuracy"])
    batches = LabBatches(data.train_l, data.train_target, batch_size, shuffle=True)
    val_size = even_batch_size(len(data.val_l), batch_size)  # as `train` picks it
    val = LabBatches(data.val_l, data.val_target, val_size)
    stopper = keras.callbacks.EarlyStopping(patience=epochs, restore_best_weights=True)
    model.fit(FloatBatches(batches), validation_data=FloatBatches(val), epochs=epochs,
              callbacks=[LearningRateLogger(), StopOnNonFinite(), stopper, timer],
              verbose=0)  # fmt: skip


def measure(fit, data: LabData, batch_size: int, epochs: int, mixed: bool) -> float:
    keras.utils.clear_session()
    set_precision(mixed)
    timer = EpochTimer()
    try:
        fit(data, batch_size, epochs + 1, timer)
    finally:
        set_precision(False)
    # training batches are always full (the last is filled from the start of the order), and
    # each epoch also validates on 1/16 more
    batches = math.ceil(len(data.train_l) / batch_size)
    seen = batches * min(batch_size, len(data.train_l)) + len(data.val_l)
    return seen / statistics.median(timer.times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after a warm-up)")
    args = parser.parse_args()
    data = synthetic_data(args.images, args.image_size)
    print(f"backend {keras.backend.backend()}, devices: {devices()}")
    print(f"paper network, {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"{args.images} images; img/s")  # fmt: skip
    print(f"{'precision':>10}  {'compact (project)':>17}  {'float32 feed':>12}  ratio")
    for mixed in (False, True):
        compact = measure(fit_compact, data, args.batch_size, args.epochs, mixed)
        floats = measure(fit_float, data, args.batch_size, args.epochs, mixed)
        name = "mixed bf16" if mixed else "fp32"
        print(f"{name:>10}  {compact:>17,.0f}  {floats:>12,.0f}  {compact / floats:.2f}x")


if __name__ == "__main__":
    main()
