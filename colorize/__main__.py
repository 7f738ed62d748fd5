"""Colorize photos with a trained model, or score a model against the gray baseline.

    python -m colorize --model MODEL --input DIR --output DIR
    python -m colorize evaluate --model MODEL --photos DIR [--json]

MODEL is a `.keras` file (saved by this project, with its settings beside it) or an MLflow model
URI such as `runs:/<run_id>/model` or `models:/<study>/latest`. Colour inputs are reduced to their
L channel first. Each output is a PNG of the input's own size, at the same relative path.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from colorize.choices import L_SCALINGS

USAGE_ERROR = 2
MODEL_HELP = "a .keras file, or an MLflow model URI: runs:/<run_id>/model, models:/<name>/latest"


class CommandError(Exception):
    """A user mistake in the command's arguments; the message is the whole report."""


def colorize_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m colorize",
        description=(
            "Colorize grayscale photos with a trained LAB network. Every image under --input "
            "(recursive; jpg, png, bmp, tiff, webp) is written as a PNG of its own size under "
            "--output. Colour inputs are reduced to grayscale (their L channel) first. To score "
            "a model against the gray baseline instead: python -m colorize evaluate --help"
        ),
    )
    parser.add_argument("--input", required=True, type=Path, help="folder of photos to colorize")
    parser.add_argument(
        "--output", required=True, type=Path, help="folder for the PNG results (not --input)"
    )
    return _model_arguments(parser)


def _model_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments both commands take: the model, and how it is fed L."""
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument(
        "--l-scaling",
        choices=L_SCALINGS,
        help="how L is fed to the network (default: the setting saved with the model)",
    )
    return parser


def evaluate_parser() -> argparse.ArgumentParser:
    from colorize.evaluate import HELP

    parser = argparse.ArgumentParser(
        prog="python -m colorize evaluate",
        description=HELP,
    )
    parser.add_argument("--photos", required=True, type=Path, help="folder of colour photos")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    return _model_arguments(parser)


def _load(reference: str, l_scaling: str | None):
    from colorize.predict import ModelNotFound, load_model

    try:
        model, settings = load_model(reference)
    except ModelNotFound as error:
        raise CommandError(str(error)) from None
    return model, l_scaling or settings["l_scaling"]


def colorize_command(args: argparse.Namespace) -> int:
    from colorize.folders import FolderError, colorize_folder, plan_outputs

    try:
        targets = plan_outputs(args.input, args.output)
    except FolderError as error:
        raise CommandError(str(error)) from None
    model, l_scaling = _load(args.model, args.l_scaling)
    try:
        result = colorize_folder(model, targets, args.input, l_scaling)
    except OSError as error:  # e.g. a full disk: what was written stays
        raise CommandError(f"cannot write the results into {args.output}: {error}") from None
    if not result.written:
        raise CommandError(f"input folder {args.input} holds no readable image")
    print(f"colorized {result.written} photo(s) into {args.output}", end="")
    print(f"; skipped {len(result.unreadable)} unreadable" if result.unreadable else "")
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    from colorize.datasets import DataError, read_photos
    from colorize.evaluate import evaluate, table_lines

    try:
        photos, _ = read_photos(args.photos, "photos")
    except DataError as error:
        raise CommandError(str(error)) from None
    model, l_scaling = _load(args.model, args.l_scaling)
    result = evaluate(
        model, ((str(p.relative_to(args.photos)), rgb) for p, rgb in photos), l_scaling
    )
    if not result.rows:
        raise CommandError(f"photos folder {args.photos} holds no colour photo to score")
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0
    print("\n".join(table_lines(result)))
    if result.skipped:
        print(f"skipped {len(result.skipped)} grayscale photo(s): no colour to score against")
    print(result.summary())
    return 0


def _check_pixel_limit() -> None:
    from colorize.images import pixel_limit

    try:
        pixel_limit()
    except ValueError as error:
        raise CommandError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    evaluating = bool(argv) and argv[0] == "evaluate"
    args = (evaluate_parser() if evaluating else colorize_parser()).parse_args(
        argv[1:] if evaluating else argv
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    from colorize.backend import BackendUnavailable, import_keras_quietly

    try:
        _check_pixel_limit()
        import_keras_quietly()  # an unusable backend is reported before any photo is read
        return (evaluate_command if evaluating else colorize_command)(args)
    except (BackendUnavailable, CommandError) as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
