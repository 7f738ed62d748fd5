"""Colorization quality, and the one registry of every metric a study records or shows.

Computed with scikit-image and numpy on colorized photos:
- PSNR and SSIM on RGB in [0, 1].
- Mean CIEDE2000 colour difference (ΔE00) between predicted and true LAB.
- Colourfulness (Hasler & Süsstrunk 2003) of the prediction and of the truth.
- AuC of the a/b error curve (Zhang et al. 2016): the share of pixels whose a/b error (Euclidean,
  LAB units) is within a threshold, averaged over thresholds 0..150; 1.0 is perfect. Its
  class-rebalanced form (`rebalanced_ab_error_auc`) weighs each pixel by the inverse frequency of
  its true colour's a/b bin.

`METRICS` lists them with the training metrics (validation loss and accuracy, epochs): name,
label, format, direction, whether a study may optimize it, and where it shows. The trial runner
logs every photo metric, `colorize evaluate` and the report read their columns from it. To add
a metric: its function here and one `MetricSpec` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from skimage import color
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from colorize.lab import lab2rgb_quietly

AUC_MAX_THRESHOLD = 150


def psnr(true_rgb: np.ndarray, pred_rgb: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(true_rgb, pred_rgb, data_range=1.0))


def ssim(true_rgb: np.ndarray, pred_rgb: np.ndarray) -> float:
    window = min(7, *true_rgb.shape[:2])
    window -= 1 - window % 2  # odd
    return float(
        structural_similarity(
            true_rgb, pred_rgb, channel_axis=-1, data_range=1.0, win_size=max(window, 3)
        )
    )


def delta_e2000(true_lab: np.ndarray, pred_lab: np.ndarray) -> float:
    return float(np.mean(color.deltaE_ciede2000(true_lab, pred_lab)))


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk colourfulness of RGB in [0, 1], on the usual 0..255 scale."""
    rgb = np.asarray(rgb, dtype=np.float64) * 255.0
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def ab_error_auc(
    true_ab: np.ndarray, pred_ab: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD
) -> float:
    errors = np.linalg.norm(np.asarray(true_ab, np.float64) - pred_ab, axis=-1).ravel()
    thresholds = np.arange(max_threshold + 1)
    within = np.searchsorted(np.sort(errors), thresholds, side="right") / errors.size
    return float(within.mean())


def rebalanced_ab_error_auc(
    true_ab: np.ndarray, pred_ab: np.ndarray, max_threshold: int = AUC_MAX_THRESHOLD
) -> float:
    """The class-rebalanced AuC of the a/b error curve (Zhang et al. 2016), so rare colours count
    as much as common ones.

    Each pixel's true a/b falls in a bin: the nearest in-gamut bin centre of
    `colorize.gamut` (grid step 10) to its a/b rounded to integers. A pixel weighs 1 / n_q, n_q
    being the number of the given pixels whose true colour is in its bin q. The curve is the
    weighted share of pixels whose a/b error (Euclidean, LAB units) is within a threshold, and the
    AuC its mean over the thresholds 0..`max_threshold`: equivalently, the mean over the bins
    present in the truth of each bin's own (unweighted) AuC. 1.0 is perfect; with a single bin
    present it equals `ab_error_auc`.
    """
    from colorize import gamut

    true_ab = np.asarray(true_ab, np.float64)
    errors = np.linalg.norm(true_ab - pred_ab, axis=-1).ravel()
    bins = gamut.nearest_bin(true_ab).ravel()
    counts = np.bincount(bins)
    weights = 1.0 / counts[bins]
    order = np.argsort(errors, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(weights[order])])
    thresholds = np.arange(max_threshold + 1)
    within = cumulative[np.searchsorted(errors[order], thresholds, side="right")]
    return float((within / cumulative[-1]).mean())


@dataclass(frozen=True)
class Photo:
    """One colorized photo beside its truth: RGB in [0, 1] and LAB, (H, W, 3) each."""

    true_rgb: np.ndarray
    pred_rgb: np.ndarray
    true_lab: np.ndarray
    pred_lab: np.ndarray


def loss_text(value: float) -> str:
    """Losses here are MSE on a/b / 128, mostly 0.001 to 0.1: five decimals keep them comparable."""
    return f"{value:.5f}" if abs(value) < 1 else f"{value:.4g}"


@dataclass(frozen=True)
class MetricSpec:
    """One metric, as everything that records or shows it reads it.

    Attributes:
        name: its name: a study file's `metric:`, report CSV columns, evaluate's JSON keys.
        label: its column header.
        fmt: how one value is written.
        direction: `minimize` or `maximize`; None where neither is better (colourfulness).
        column: the trial's MLflow metric holding it (the name, unless training names it).
        compute: its value on one colorized photo; None for what training measures.
        objective: a study may optimize it.
        per_epoch: known after every epoch, so it can drive pruning.
        scale: shown multiplied by it (accuracy in percent).
        report: a column of the report's comparison and trials tables.
        evaluate: a column of `colorize evaluate` and of the report's table against gray.
        head_specific: each head (`trainer.loss`) measures it its own way (its training loss),
            so values of different heads are never compared or ranked.
    """

    name: str
    label: str
    fmt: Callable[[float], str]
    direction: str | None = None
    column: str = ""
    compute: Callable[[Photo], float] | None = None
    objective: bool = False
    per_epoch: bool = False
    scale: float = 1.0
    report: bool = False
    evaluate: bool = False
    head_specific: bool = False

    def __post_init__(self):
        if not self.column:
            object.__setattr__(self, "column", self.name)


METRICS = (
    MetricSpec("val_accuracy", "Val. acc. %", "{:.2f}".format, "maximize",
               column="best_val_accuracy", objective=True, per_epoch=True, scale=100.0,
               report=True),
    MetricSpec("train_accuracy", "Train acc. %", "{:.2f}".format, "maximize", scale=100.0,
               report=True),
    MetricSpec("val_loss", "Val. loss", loss_text, "minimize", column="best_val_loss",
               objective=True, per_epoch=True, report=True, head_specific=True),
    MetricSpec("delta_e2000", "ΔE2000", "{:.2f}".format, "minimize",
               compute=lambda p: delta_e2000(p.true_lab, p.pred_lab), objective=True,
               report=True, evaluate=True),
    MetricSpec("psnr", "PSNR dB", "{:.2f}".format, "maximize",
               compute=lambda p: psnr(p.true_rgb, p.pred_rgb), objective=True, report=True,
               evaluate=True),
    MetricSpec("ssim", "SSIM", "{:.3f}".format, "maximize",
               compute=lambda p: ssim(p.true_rgb, p.pred_rgb), objective=True, report=True,
               evaluate=True),
    MetricSpec("ab_auc", "a/b AuC", "{:.3f}".format, "maximize",
               compute=lambda p: ab_error_auc(p.true_lab[..., 1:], p.pred_lab[..., 1:]),
               objective=True, report=True, evaluate=True),
    MetricSpec("ab_auc_rebalanced", "Rebal. AuC", "{:.3f}".format, "maximize",
               compute=lambda p: rebalanced_ab_error_auc(p.true_lab[..., 1:], p.pred_lab[..., 1:]),
               objective=True, report=True, evaluate=True),
    MetricSpec("colorfulness_pred", "Colourful", "{:.1f}".format,
               compute=lambda p: colorfulness(p.pred_rgb), report=True, evaluate=True),
    MetricSpec("colorfulness_true", "Colourful (truth)", "{:.1f}".format,
               compute=lambda p: colorfulness(p.true_rgb), report=True, evaluate=True),
    MetricSpec("colorfulness_gap", "Colour gap", "{:.1f}".format, "minimize",
               compute=lambda p: abs(colorfulness(p.pred_rgb) - colorfulness(p.true_rgb)),
               objective=True, report=True),
    MetricSpec("epochs_run", "Epochs run", "{:.1f}".format),
)  # fmt: skip
METRIC = {metric.name: metric for metric in METRICS}
PHOTO_METRICS = tuple(m.name for m in METRICS if m.compute is not None)
EVALUATE_METRICS = tuple(m.name for m in METRICS if m.evaluate)
REPORT_METRICS = tuple(m.name for m in METRICS if m.report)


def photo_metrics(
    true_rgb: np.ndarray,
    pred_rgb: np.ndarray,
    true_lab: np.ndarray | None = None,
    pred_lab: np.ndarray | None = None,
) -> dict[str, float]:
    """Every photo metric of one photo from RGB in [0, 1] (H, W, 3); the LAB ones are taken on
    `true_lab` / `pred_lab` where given, else on the RGB converted to LAB."""
    true_lab = color.rgb2lab(true_rgb) if true_lab is None else true_lab
    pred_lab = color.rgb2lab(pred_rgb) if pred_lab is None else pred_lab
    photo = Photo(true_rgb, pred_rgb, true_lab, pred_lab)
    return {m.name: m.compute(photo) for m in METRICS if m.compute is not None}


def colorization_metrics(true_lab: np.ndarray, pred_lab: np.ndarray) -> dict[str, float]:
    """Metrics averaged over photos; inputs are LAB float arrays (N, H, W, 3)."""
    rows = [
        photo_metrics(np.clip(lab2rgb_quietly(t), 0, 1), np.clip(lab2rgb_quietly(p), 0, 1), t, p)
        for t, p in zip(true_lab, pred_lab, strict=True)
    ]
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}
