"""Measure a finished `study=losses` on the 7 landscape test photos: each head's best model
(`models:/losses@loss-mse`, `@loss-classification`) against gray and against the photos, and
one picture of three test photos: gray | regression | classification | truth.

    python -m experiments.run study=losses data.source=landscapes       # the study (quick profile)
    python bench/bench_losses_landscapes.py --runs-dir mlruns --picture docs/img/losses.png

Per model it prints mean CIEDE2000, a/b AuC, class-rebalanced a/b AuC and colourfulness
(Hasler-Suesstrunk) over the test photos, gray's and the photos' own, then the README's target
for the classification model: colourfulness within 30 % of the photos', rebalanced AuC at least
0.02 above gray's and above the regression model's.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

HEADS = ("mse", "classification")
KEYS = ("delta_e2000", "ab_auc", "ab_auc_rebalanced", "colorfulness_pred", "colorfulness_true")
PICTURE_PHOTOS = 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default="mlruns")
    parser.add_argument("--study", default="losses")
    parser.add_argument("--picture", type=Path, default=None)
    args = parser.parse_args()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(args.runs_dir).resolve()}/mlflow.db"

    from colorize.datasets.landscapes import landscape_photos
    from colorize.evaluate import evaluate, fit_side
    from colorize.predict import colorize_rgb, load_model

    photos = [(ref.name.split(":", 1)[-1], ref.read()) for ref in landscape_photos("test")]
    models, scores = {}, {}
    for head in HEADS:
        models[head] = load_model(f"models:/{args.study}@loss-{head}")
        scores[head] = evaluate(models[head][0], photos, models[head][1]["l_scaling"])
    gray = scores[HEADS[0]].mean("gray")
    print(f"{len(photos)} landscape test photos")
    print("| model | ΔE2000 | a/b AuC | rebalanced AuC | colourfulness | photos' colourfulness |")
    print("|---|---|---|---|---|---|")
    for who, means in [("gray", gray), *((h, scores[h].mean("model")) for h in HEADS)]:
        print(
            f"| {who} | {means['delta_e2000']:.2f} | {means['ab_auc']:.3f} | "
            f"{means['ab_auc_rebalanced']:.3f} | {means['colorfulness_pred']:.1f} | "
            f"{means['colorfulness_true']:.1f} |"
        )
    ours, regression = scores["classification"].mean("model"), scores["mse"].mean("model")
    vivid = abs(ours["colorfulness_pred"] / ours["colorfulness_true"] - 1)
    print(
        f"classification: colourfulness {100 * vivid:.0f} % from the photos' (target <= 30 %); "
        f"rebalanced AuC {ours['ab_auc_rebalanced'] - gray['ab_auc_rebalanced']:+.3f} against "
        f"gray (target >= +0.02), {ours['ab_auc_rebalanced'] - regression['ab_auc_rebalanced']:+.3f}"
        " against regression (target > 0)"
    )
    for head in HEADS:
        print(f"{head} against gray: {scores[head].summary()}")
    if args.picture:
        from experiments.trials.trial_figures import close, strip_figure

        chosen = [fit_side(rgb, 256) for _, rgb in photos[:PICTURE_PHOTOS]]
        from skimage.color import rgb2gray

        columns = [("gray", [rgb2gray(rgb) for rgb in chosen])]
        for head, title in (("mse", "regression"), ("classification", "classification")):
            model, settings = models[head]
            columns.append(
                (title, [colorize_rgb(model, rgb, settings["l_scaling"]) for rgb in chosen])
            )
        columns.append(("truth", chosen))
        figure = strip_figure(columns, "")
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(args.picture, dpi=90, bbox_inches="tight")
        close(figure)
        print(f"picture: {args.picture}")


if __name__ == "__main__":
    main()
