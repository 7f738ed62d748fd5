"""Benchmark: what the classification head costs against regression, measured side by side.

    python bench/bench_heads.py                       # 64x64, batch 16, the paper's network
    python bench/bench_heads.py --size 128 --batch 32 --steps 20

For each head (`mse`, `classification`; batch normalization off and on), in a fresh child
process (so its peak RSS is its own): build the paper's network at `--size` and fit it two
epochs of `--steps` steps on random compact batches (uint8 L, int8 a/b: the study's 4-byte
feed) through `colorize.train.train`; the second epoch (traced and compiled by then) is timed.
It reports images a second, the model's
parameters and the child's peak RSS (VmHWM). The heads alternate in the order given, twice, and
the better of the two runs of each counts, so a busy moment on the machine hits neither alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import keras
import numpy as np
from colorize.datasets import LabData
from colorize.model import build_model
from colorize.train import train

size, batch, steps, loss, batch_norm = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
count = batch * steps
l = rng.integers(0, 256, (count, size, size, 1), dtype=np.uint8)
ab = rng.integers(-60, 60, (count, size, size, 2), dtype=np.int8)
target = np.concatenate([ab, (ab[..., 1:] > ab[..., :1]).astype(np.int8)], axis=-1)
data = LabData("random", size, l, target, l[:batch], target[:batch])


class EpochSeconds(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.started  # the last epoch's: traced by then


timer = EpochSeconds()
model = build_model(image_size=size, loss=loss, batch_norm=batch_norm)
train(model, data, loss=loss, batch_size=batch, epochs=2, patience=5, callbacks=[timer])
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"img_s": count / timer.seconds, "params": model.count_params(),
                  "peak_mb": peak / 1024}))
"""


def run(size: int, batch: int, steps: int, loss: str, batch_norm: bool) -> dict:
    arguments = json.dumps([size, batch, steps, loss, batch_norm])
    result = subprocess.run(
        [sys.executable, "-c", CHILD, arguments], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    cases = [(loss, bn) for bn in (False, True) for loss in ("mse", "classification")]
    best: dict[tuple, dict] = {}
    for _ in range(2):
        for loss, batch_norm in cases:
            started = time.perf_counter()
            found = run(args.size, args.batch, args.steps, loss, batch_norm)
            found["wall_s"] = time.perf_counter() - started
            if (loss, batch_norm) not in best or found["img_s"] > best[(loss, batch_norm)][
                "img_s"
            ]:
                best[(loss, batch_norm)] = found
    print(f"paper's network, {args.size}x{args.size}, batch {args.batch}, {args.steps} steps")
    print("| head | batch norm | img/s | parameters | peak RSS MB | img/s against mse |")
    print("|---|---|---|---|---|---|")
    for (loss, batch_norm), found in best.items():
        base = best[("mse", batch_norm)]["img_s"]
        print(
            f"| {loss} | {'on' if batch_norm else 'off'} | {found['img_s']:.1f} | "
            f"{found['params']:,} | {found['peak_mb']:.0f} | {found['img_s'] / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
