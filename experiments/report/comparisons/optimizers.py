"""The paper's first result: Adamax, Adam and RMSprop, over seeds.

Verdict: the difference of per-seed mean validation accuracy between the paper's extremes
(Adamax minus RMSprop), with a Welch 95 % t-interval; `reproduced` when it excludes zero on the
positive side, `not reproduced` on the negative side, `inconclusive` otherwise or with fewer
than 3 seeds each. The paper's gap (about 5 points) is reported beside it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from colorize import stats
from experiments.report import paper
from experiments.report.comparisons.settings import best_trial
from experiments.report.race import (
    ADAMAX_VS_RMSPROP,
    race_figures,
    race_sentences,
    raced_interval,
)
from experiments.report.tables import (
    COLUMNS,
    TABLE_COLUMNS,
    Table,
    group_rows,
    label,
    space_column,
)
from experiments.report.verdicts import Grouping, Verdict, word_of

HIGH, LOW = paper.OPTIMIZER_HIGHEST, paper.OPTIMIZER_LOWEST


def _key(value) -> str:
    return paper.OPTIMIZER_ALIASES.get(str(value).lower(), str(value).lower())


def _by_optimizer(stored) -> dict[str, pd.DataFrame]:
    complete = stored.complete_trials()
    keys = complete[space_column(stored, "optimizer")].map(_key)
    order = list(paper.OPTIMIZER_FINDINGS)
    found = sorted(set(keys), key=lambda k: (order.index(k) if k in order else len(order), k))
    return {key: complete[keys == key] for key in found}


def accuracy_points(frame: pd.DataFrame) -> list[float]:
    """Per-trial (per-seed) validation accuracy in percent."""
    column = pd.to_numeric(frame["best_val_accuracy"], errors="coerce")
    return [100 * v for v in column.dropna()]


def verdicts(stored) -> list[Verdict]:
    groups = _by_optimizer(stored)
    finding = (
        f"Adamax reaches a higher validation accuracy than RMSprop (paper: about "
        f"{paper.OPTIMIZER_GAP_POINTS:.0f} points higher)"
    )
    missing = [paper.optimizer_name(k) for k in (HIGH, LOW) if k not in groups]
    if missing:
        return [Verdict(finding, "inconclusive", f"No finished {' or '.join(missing)} trial.")]
    raced = raced_interval(stored, ADAMAX_VS_RMSPROP, "val_accuracy")
    interval = (
        raced["interval"]
        if raced
        else stats.welch_interval(
            accuracy_points(groups[HIGH]), accuracy_points(groups[LOW]), "seeds"
        )
    )
    means = ", ".join(
        f"{paper.optimizer_name(k)} {sum(accuracy_points(f)) / len(f):.2f} %"
        for k, f in groups.items()
    )
    evidence = (
        f"Adamax minus RMSprop mean validation accuracy: {interval.describe(' points')}; "
        f"paper: about +{paper.OPTIMIZER_GAP_POINTS:.0f} points. Means: {means}."
    )
    return [Verdict(finding, word_of(interval, +1), evidence)]


def optimizer_table(stored) -> Table:
    """Per optimizer over seeds: accuracies, loss, colour metrics, epochs, early stopping."""
    names = [m.name for m in TABLE_COLUMNS]

    def own(key: str, frame: pd.DataFrame) -> tuple[list[str], dict]:
        finding = paper.OPTIMIZER_FINDINGS.get(key, "not in the paper")
        return [finding], {
            "best_epoch_mean": float(frame["best_epoch"].mean()),
            "paper_finding": finding,
        }

    name = paper.optimizer_name
    columns = ["Optimizer", "Trials", *(COLUMNS[n].header for n in names), "Early stop", "Paper"]
    return Table.of_rows(
        group_rows(_by_optimizer(stored), names, name, ("optimizer", name), own),
        name="",
        title="Optimizers: the paper's first result (mean ± std over seeds)",
        columns=columns,
        notes=[v.sentence() for v in verdicts(stored)] + race_sentences(stored),
        wide={len(columns) - 1},
    )


def paper_table(stored, verdict: Verdict) -> Table:
    """The paper's optimizer gap and final accuracies beside ours."""
    groups = _by_optimizer(stored)
    gap = math.nan
    if HIGH in groups and LOW in groups:
        gap = stats.welch_interval(
            accuracy_points(groups[HIGH]), accuracy_points(groups[LOW]), "seeds"
        ).difference
    best = best_trial(stored)
    where = (
        f"trial #{int(best['number'])}, {paper.optimizer_name(best['optimizer'])}, seed "
        f"{label(best['seed'])}, epoch {int(best['best_epoch'])} of {label(best['epochs'])}"
    )
    records = [
        (
            "Adamax minus RMSprop, val. acc. points",
            f"about +{paper.OPTIMIZER_GAP_POINTS:.0f}",
            "–" if math.isnan(gap) else f"{gap:+.2f} ({verdict.word})",
        ),
        (
            "Validation accuracy of the final model (ours: the study's best trial)",
            f"{paper.FINAL_VAL_ACCURACY:.2f}% ({paper.FINAL_EPOCHS} epochs)",
            f"{100 * best['best_val_accuracy']:.2f}% ({where})",
        ),
        (
            "Training accuracy of the final model",
            f"{paper.FINAL_TRAIN_ACCURACY:.2f}% ({paper.FINAL_EPOCHS} epochs)",
            f"{100 * best['train_accuracy']:.2f}% (same trial and epoch)",
        ),
    ]
    params = stored.params
    return Table(
        name="paper",
        title="The paper's figures beside ours",
        columns=["Finding", "Paper", "Ours"],
        rows=[list(r) for r in records],
        frame=pd.DataFrame(records, columns=["finding", "paper", "ours"]),
        notes=[
            f"Ours at profile {params.get('profile', '?')} on {params.get('dataset', '?')} "
            f"({params.get('dataset_photos', '?')} photos at {params.get('image_size', '?')} "
            "px); the paper trained on about 300 landscape photos at 256x256."
        ],
        wide={0, 2},
    )


def tables(stored) -> list[Table]:
    return [optimizer_table(stored), paper_table(stored, verdicts(stored)[0])]


def grouping(stored) -> Grouping:
    trials = stored.trials.set_index("number", drop=False)
    labels = trials[space_column(stored, "optimizer")].map(_key).map(paper.optimizer_name)
    known = [paper.optimizer_name(k) for k in paper.OPTIMIZER_FINDINGS]
    order = [n for n in known if n in set(labels)] + sorted(set(labels) - set(known))
    return Grouping("optimizer", labels, order)


def figures_of(stored, folder: Path) -> list[tuple[str, str, Path]]:
    """A raced study's intervals narrowing over rounds (`experiments.report.race`)."""
    return race_figures(stored, folder)
