"""Colorize every photo of a folder with a trained model.

    python -m colorize --model MODEL --input DIR --output DIR

MODEL is a `.keras` file (saved by this project, with its settings beside it) or an MLflow model
URI such as `runs:/<run_id>/model` or `models:/<study>/latest`. Colour inputs are reduced to their
L channel first. Each output is a PNG of the input's own size, at the same relative path.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

USAGE_ERROR = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m colorize",
        description=(
            "Colorize grayscale photos with a trained LAB network. Every image under --input "
            "(recursive; jpg, png, bmp, tiff, webp) is written as a PNG of its own size under "
            "--output. Colour inputs are reduced to grayscale (their L channel) first."
        ),
    )
    parser.add_argument(
        "--model",
        required=True,
        help="a .keras file, or an MLflow model URI: runs:/<run_id>/model, models:/<name>/latest",
    )
    parser.add_argument("--input", required=True, type=Path, help="folder of photos to colorize")
    parser.add_argument("--output", required=True, type=Path, help="folder for the PNG results")
    parser.add_argument(
        "--l-scaling",
        choices=("unit", "centered", "raw"),
        help="how L is fed to the network (default: the setting saved with the model)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from PIL import Image
    from tqdm.auto import tqdm

    from colorize.backend import BackendUnavailable, import_keras_quietly
    from colorize.data import DataError, read_photos

    try:
        import_keras_quietly()  # an unusable backend is reported before any photo is read
        photos, unreadable = read_photos(args.input, "input")
    except (BackendUnavailable, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    from colorize.predict import ModelNotFound, colorize_rgb, load_model, output_name

    try:
        model, settings = load_model(args.model)
    except ModelNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    l_scaling = args.l_scaling or settings["l_scaling"]
    args.output.mkdir(parents=True, exist_ok=True)
    for path, rgb in tqdm(photos, desc="colorizing", unit="photo", disable=None):
        target = args.output / output_name(path, args.input)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(colorize_rgb(model, rgb, l_scaling)).save(target)
    print(f"colorized {len(photos)} photo(s) into {args.output}", end="")
    print(f"; skipped {len(unreadable)} unreadable" if unreadable else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
