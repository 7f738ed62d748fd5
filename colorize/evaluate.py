"""Is a model worth using? Its colorizations scored against the truth beside the zero-chroma gray
baseline (the photo's own L with a = b = 0), photo by photo.

Each colour photo (downscaled to `MAX_SIDE` on its longer side, so scoring stays fast) is
colorized from its L, and both the model's output and gray are scored against the photo with
the registry's evaluate metrics (`colorize.metrics`: mean CIEDE2000, PSNR, SSIM, a/b AuC,
colourfulness). A photo "beats gray"
when its mean CIEDE2000 is lower than gray's. Over the photos, the verdict rests on a paired
95 % t-interval of (model - gray) mean CIEDE2000: `beats gray` when it lies below zero, `worse
than gray` above, `inconclusive` otherwise or with fewer than 3 photos.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from colorize import images, lab, stats
from colorize.metrics import EVALUATE_METRICS, METRIC, photo_metrics

MAX_SIDE = 512
METRICS = EVALUATE_METRICS  # the registry's columns for scoring against gray
HELP = (  # what `python -m colorize evaluate --help` says
    "Is the model worth using? Colorizes every colour photo under --photos from its L (longer "
    f"side scaled to {MAX_SIDE} px at most) and prints, per photo and on average, PSNR, SSIM, "
    "mean CIEDE2000, colourfulness and a/b AuC for the model and for the zero-chroma gray "
    "baseline (the photo's L with a = b = 0). A photo 'beats gray' when the model's mean "
    "CIEDE2000 is lower; the closing verdict (beats gray, worse than gray, inconclusive) rests "
    "on a paired 95 %% t-interval over the photos. Grayscale photos are skipped."
)


@dataclass
class Evaluation:
    """Per-photo scores of a model and of gray, their means and the verdict."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # grayscale photos: nothing to score

    def mean(self, who: str) -> dict[str, float]:
        return {
            key: float(np.mean([row[who][key] for row in self.rows])) if self.rows else np.nan
            for key in METRICS
        }

    @property
    def interval(self) -> stats.Interval:
        return stats.paired_interval(
            [row["model"]["delta_e2000"] for row in self.rows],
            [row["gray"]["delta_e2000"] for row in self.rows],
            "photos",
        )

    @property
    def verdict(self) -> str:
        return {-1: "beats gray", 1: "worse than gray", 0: "inconclusive"}[self.interval.sign()]

    def summary(self) -> str:
        """One sentence: the verdict with its numbers and the test behind it."""
        model, gray = self.mean("model"), self.mean("gray")
        beaten = sum(row["beats_gray"] for row in self.rows)
        return (
            f"{self.verdict}: mean CIEDE2000 {model['delta_e2000']:.2f} for the model against "
            f"{gray['delta_e2000']:.2f} for gray, model - gray "
            f"{self.interval.describe()}; the model beats gray on {beaten} of {len(self.rows)} "
            "photos"
        )

    def to_dict(self) -> dict:
        interval = self.interval
        return {
            "photos": self.rows,
            "skipped_grayscale": self.skipped,
            "mean": {"model": self.mean("model"), "gray": self.mean("gray")},
            "verdict": self.verdict,
            "test": {
                "difference": interval.difference,
                "low": interval.low,
                "high": interval.high,
                "description": interval.test,
            },
            "summary": self.summary(),
        }


def fit_side(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The photo with its longer side at most `max_side` (aspect kept)."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS))


def gray_baseline(rgb: np.ndarray) -> np.ndarray:
    """The photo's L with a = b = 0, as LAB float32."""
    lightness = lab.rgb_to_lab(rgb)[..., :1]
    return lab.join_lab(lightness, np.zeros(rgb.shape[:2] + (2,), np.float32))


def _scores(truth: np.ndarray, true_lab: np.ndarray, output_lab: np.ndarray) -> dict:
    output_rgb = lab.lab_to_rgb(output_lab)
    found = photo_metrics(truth, output_rgb, true_lab, lab.rgb_to_lab(output_rgb))
    return {key: found[key] for key in METRICS}


def evaluate(
    model, photos: Iterable[tuple[str, np.ndarray]], l_scaling: str = "unit"
) -> Evaluation:
    """Score `model` and gray on (name, RGB uint8) photos; grayscale photos are skipped."""
    from colorize.predict import colorize_lab

    result = Evaluation()
    for name, rgb in photos:
        if images.is_grayscale(rgb):
            result.skipped.append(name)
            continue
        rgb = fit_side(rgb)
        truth = rgb.astype(np.float32) / 255.0
        true_lab = lab.rgb_to_lab(rgb)
        model_scores = _scores(truth, true_lab, colorize_lab(model, rgb, l_scaling))
        gray_scores = _scores(truth, true_lab, gray_baseline(rgb))
        result.rows.append(
            {
                "photo": name,
                "model": model_scores,
                "gray": gray_scores,
                "beats_gray": bool(model_scores["delta_e2000"] < gray_scores["delta_e2000"]),
            }
        )
    return result


COLUMN_WIDTH = 15


def table_lines(result: Evaluation) -> list[str]:
    """The per-photo table and the mean row, as fixed-width text: one column per metric of the
    registry's evaluate columns, each `model / gray`."""
    header = " ".join(f"{METRIC[key].label:>{COLUMN_WIDTH}}" for key in METRICS)
    lines = [
        f"{'photo':<34} {header}  beats gray",
        f"{'':<34} {'model / gray':>{COLUMN_WIDTH}}",
    ]

    def cells(model: dict, gray: dict) -> str:
        return " ".join(
            f"{METRIC[key].fmt(model[key]) + ' / ' + METRIC[key].fmt(gray[key]):>{COLUMN_WIDTH}}"
            for key in METRICS
        )

    for row in result.rows:
        name = row["photo"] if len(row["photo"]) <= 34 else "…" + row["photo"][-33:]
        verdict = "yes" if row["beats_gray"] else "no"
        lines.append(f"{name:<34} {cells(row['model'], row['gray'])}  {verdict}")
    if result.rows:
        lines.append(f"{'mean':<34} {cells(result.mean('model'), result.mean('gray'))}")
    return lines
