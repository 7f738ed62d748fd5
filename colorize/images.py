"""Reading photos from disk into RGB arrays, robust to the formats people actually have.

Handles 16-bit, RGBA/LA (composited on white), palette and CMYK images, decodes very large JPEGs at
reduced size and bounds every image's longer side, so one huge photo cannot exhaust memory.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MAX_SIDE = 4096  # longer side kept when reading; larger photos are downscaled on decode

# Photos over this many pixels, as they would be decoded, are refused before decoding. A JPEG is
# decoded at a reduced scale (a 12000x9000 photo as 3000x2250), so only what is really decoded
# counts; a 20000x20000 PNG, which would be decoded whole (1.2 GB), is refused.
# `COLORIZE_MAX_MEGAPIXELS` sets another limit (e.g. 400 on a machine with memory to spare).
MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "COLORIZE_MAX_MEGAPIXELS"
MIN_SIDE = 3  # a narrower photo has no neighbourhood to colorize or score (SSIM) from
# Pillow's own guard refuses at opening, before any scale is known: lifted above ours.
Image.MAX_IMAGE_PIXELS = 4 * 89_478_485


class UnreadableImage(Exception):
    """A file that cannot be decoded as an image."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grayscale: scale by the actual range so 16-bit data keeps its contrast
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        return Image.fromarray(np.clip(values / top * 255.0, 0, 255).astype(np.uint8)).convert(
            "RGB"
        )
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        span = max(values.max() - values.min(), 1e-12)
        scaled = ((values - values.min()) / span * 255.0).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def pixel_limit() -> int:
    """The most pixels a photo may decode to: `COLORIZE_MAX_MEGAPIXELS` million, else
    `MAX_PIXELS`.

    Raises:
        ValueError: the variable is set to something other than a positive number.
    """
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    try:
        megapixels = float(text)
    except ValueError:
        megapixels = 0.0
    if not megapixels > 0:
        raise ValueError(f"{MAX_PIXELS_ENV}={text} must be a positive number of megapixels")
    return int(megapixels * 1e6)


def read_rgb(
    path: Path | BinaryIO, max_side: int = MAX_SIDE, name: str = "", max_pixels: int | None = None
) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), EXIF-rotated, longer side at most `max_side`.

    `path` may also be an open binary file (`name` then names it in errors).

    Raises:
        UnreadableImage: the file is not a decodable image (corrupt, truncated, not an image),
            would decode to more than `max_pixels` pixels (default `pixel_limit()`), or has a
            side under `MIN_SIDE` pixels (both said before decoding it).
    """
    max_pixels = max_pixels or pixel_limit()
    try:
        with warnings.catch_warnings():
            # Pillow's own guard warns from 89 MP: ours, below, decides on what is decoded
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.draft("RGB", (max_side, max_side))  # JPEG: decode at reduced size
                width, height = image.size
                if width * height > max_pixels:
                    raise UnreadableImage(
                        f"{name or path}: {width}x{height} is {width * height / 1e6:.3g} "
                        f"megapixels, over the limit of {max_pixels / 1e6:.3g}: not decoded"
                    )
                if min(width, height) < MIN_SIDE:
                    raise UnreadableImage(
                        f"{name or path}: {width}x{height} is too small to colorize (at least "
                        f"{MIN_SIDE} pixels a side)"
                    )
                image.load()
                if max(image.size) > max_side:
                    # reducing_gap: shrink by an integer factor first, so no large float buffer
                    image.thumbnail(
                        (max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0
                    )
                image = ImageOps.exif_transpose(image)
                rgb = _to_rgb(image)
                return np.asarray(rgb, dtype=np.uint8).copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnreadableImage(f"{name or path}: {reason}") from error


def is_grayscale(rgb: np.ndarray, tolerance: int = 6) -> bool:
    """True when the photo carries no colour (channels equal up to compression noise)."""
    small = rgb[:: max(1, rgb.shape[0] // 256), :: max(1, rgb.shape[1] // 256)].astype(np.int16)
    spread = small.max(axis=-1) - small.min(axis=-1)
    return float(np.percentile(spread, 99)) <= tolerance


def fit_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size`, then centre-crop to `size` x `size`."""
    image = Image.fromarray(rgb)
    return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def resize(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a uint8 image (H, W[, C]) with Lanczos filtering."""
    return np.asarray(
        Image.fromarray(array).resize((width, height), Image.Resampling.LANCZOS), dtype=np.uint8
    )
