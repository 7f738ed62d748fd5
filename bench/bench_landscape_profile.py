"""What beats gray on the landscape photos in minutes on a CPU: trains the paper's network with
each candidate setting (image size, crops per photo, epochs, learning rate) on the landscape
training photos, then scores the kept weights against the zero-chroma gray baseline on the seven
whole test photos (`colorize.evaluate`: mean CIEDE2000, with the paired 95 % interval).

    python bench/bench_landscape_profile.py                 # the candidates below
    python bench/bench_landscape_profile.py --only 2        # one of them

Needs the landscape packages (see README, "Datasets"). Prints one row per setting: wall time,
epochs run, best validation loss, mean CIEDE2000 of model and gray, and the verdict.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from colorize.backend import import_keras_quietly  # noqa: E402

CANDIDATES = [  # image_size, crops_per_photo, epochs, patience, learning_rate, batch_size
    (64, 12, 20, 5, 1e-3, 16),  # the quick profile as the embedded set uses it
    (32, 24, 30, 6, 1e-3, 16),
    (32, 48, 30, 6, 1e-3, 32),
    (32, 48, 30, 6, 3e-4, 32),
    (64, 24, 20, 5, 3e-4, 16),
    (32, 48, 40, 12, 1e-3, 32),
    (32, 96, 30, 8, 1e-3, 32),
    (64, 48, 30, 8, 1e-3, 32),
]


def run(image_size, crops, epochs, patience, learning_rate, batch_size, test_photos) -> dict:
    from colorize.datasets import DatasetSpec, load_dataset
    from colorize.evaluate import evaluate
    from colorize.model import build_model
    from colorize.train import train

    started = time.perf_counter()
    data = load_dataset(
        DatasetSpec("landscapes", image_size=image_size, crops_per_photo=crops, val_photos=4)
    )
    model = build_model(image_size=image_size)
    result = train(
        model, data, optimizer="adamax", learning_rate=learning_rate, batch_size=batch_size,
        epochs=epochs, patience=patience, seed=0,
    )  # fmt: skip
    scores = evaluate(model, test_photos)
    return {
        "seconds": time.perf_counter() - started,
        "train_images": len(data.train_l),
        "epochs_run": result.epochs_run,
        "best_val_loss": result.best_val_loss,
        "model": scores.mean("model")["delta_e2000"],
        "gray": scores.mean("gray")["delta_e2000"],
        "beaten": sum(row["beats_gray"] for row in scores.rows),
        "photos": len(scores.rows),
        "verdict": scores.verdict,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=int, help="run only this candidate (0-based)")
    args = parser.parse_args()
    import_keras_quietly(will_seed=True)
    from colorize.datasets.landscapes import landscape_photos

    test_photos = [(ref.name.rsplit("/", 1)[-1], ref.read()) for ref in landscape_photos("test")]
    chosen = [CANDIDATES[args.only]] if args.only is not None else CANDIDATES
    print("size crops epochs lr      batch | seconds train_imgs epochs_run val_loss | "
          "ΔE model  ΔE gray  beats  verdict")  # fmt: skip
    for size, crops, epochs, patience, rate, batch in chosen:
        found = run(size, crops, epochs, patience, rate, batch, test_photos)
        print(
            f"{size:4d} {crops:5d} {epochs:6d} {rate:<7g} {batch:5d} | {found['seconds']:7.0f} "
            f"{found['train_images']:10d} {found['epochs_run']:10d} {found['best_val_loss']:.5f} "
            f"| {found['model']:8.2f} {found['gray']:8.2f} {found['beaten']:3d}/{found['photos']}"
            f"  {found['verdict']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
