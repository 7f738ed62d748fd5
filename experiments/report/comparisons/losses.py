"""Regression against classification (`study=losses`): the two heads over seeds.

Verdicts, each a Welch 95 % t-interval over seeds (`inconclusive` where it holds zero or with
fewer than 3 seeds a head):
- "classification with rebalancing colours more vividly than regression": the colourfulness of
  the validation photos as colorized, classification minus regression (Zhang et al. 2016);
- "regression has the lower ΔE2000": validation CIEDE2000, regression minus classification
  (a mean-squared error is minimized by the mean colour, which CIEDE2000 also favours).

Each head's validation loss measures something else (MSE on a/b, cross-entropy over bins), so
the tables leave it out: heads are compared on what they share.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from colorize import stats
from experiments.report.race import (
    MSE_VS_CLASSIFICATION,
    race_figures,
    race_sentences,
    raced_interval,
)
from experiments.report.tables import (
    COLUMNS,
    Table,
    group_rows,
    shared_metrics,
    space_column,
    values,
)
from experiments.report.verdicts import Grouping, Verdict, word_of

REGRESSION, CLASSIFICATION = "mse", "classification"
NAMES = {REGRESSION: "regression (mse)", CLASSIFICATION: "classification"}
VERDICTS_HEADING = "Verdicts on regression or classification (Zhang, Isola & Efros 2016)"


def _by_loss(stored) -> dict[str, pd.DataFrame]:
    complete = stored.complete_trials()
    keys = complete[space_column(stored, "loss")].astype(str)
    order = [REGRESSION, CLASSIFICATION]
    found = sorted(set(keys), key=lambda k: (order.index(k) if k in order else len(order), k))
    return {key: complete[keys == key] for key in found}


def _verdict(
    groups, metric: str, first: str, second: str, finding: str, unit: str, raced=None
) -> Verdict:
    """`raced`: the race's verdict on this comparison (`raced_interval`), if the study raced it."""
    missing = [NAMES[k] for k in (first, second) if k not in groups]
    if missing:
        return Verdict(finding, "inconclusive", f"No finished {' or '.join(missing)} trial.")
    spec = COLUMNS[metric]
    interval = (
        raced["interval"]
        if raced
        else stats.welch_interval(
            values(groups[first], spec), values(groups[second], spec), "seeds"
        )
    )
    means = ", ".join(
        f"{NAMES.get(k, k)} {spec.fmt(values(f, spec).mean())}" for k, f in groups.items()
    )
    evidence = (
        f"{spec.header}, {NAMES[first]} minus {NAMES[second]}: {interval.describe(unit)}. "
        f"Means over seeds: {means}."
    )
    return Verdict(finding, word_of(interval, +1 if metric != "delta_e2000" else -1), evidence)


def verdicts(stored) -> list[Verdict]:
    groups = _by_loss(stored)
    return [
        _verdict(
            groups, "colorfulness_pred", CLASSIFICATION, REGRESSION,
            "Classification with rebalancing colours more vividly than regression", "",
        ),
        _verdict(
            groups, "delta_e2000", REGRESSION, CLASSIFICATION,
            "Regression has the lower ΔE2000", "",
            raced_interval(stored, MSE_VS_CLASSIFICATION, "delta_e2000"),
        ),
    ]  # fmt: skip


def losses_table(stored) -> Table:
    """Per head over seeds: every shared metric, epochs, early stopping."""
    names = [m.name for m in shared_metrics(stored)]
    rows, records = group_rows(
        _by_loss(stored), names, lambda key: NAMES.get(key, key), ("loss", str)
    )
    columns = ["Head", "Trials", *(COLUMNS[n].header for n in names), "Early stop"]
    return Table(
        name="",
        title="Regression or classification (mean ± std over seeds, validation photos)",
        columns=columns,
        rows=rows,
        frame=pd.DataFrame(records),
        notes=[
            "Colourful: Hasler-Suesstrunk colourfulness of the colorized photos (truth: of the "
            "photos themselves); colour gap: |colourful - truth's| per photo. Rebal. AuC: the "
            "a/b error AuC with each colour bin weighted alike (Zhang et al. 2016). Each "
            "head's validation loss measures something else and is not compared.",
            *(v.sentence() for v in verdicts(stored)),
            *race_sentences(stored),
        ],
    )


def tables(stored) -> list[Table]:
    return [losses_table(stored)]


def grouping(stored) -> Grouping:
    trials = stored.trials.set_index("number", drop=False)
    keys = trials[space_column(stored, "loss")].astype(str)
    labels = keys.map(lambda k: NAMES.get(k, k))
    order = [NAMES[k] for k in (REGRESSION, CLASSIFICATION) if k in set(keys)]
    order += sorted(set(labels) - set(order))
    return Grouping("head", labels, order)


def figures_of(stored, folder: Path) -> list[tuple[str, str, Path]]:
    """A raced study's intervals narrowing over rounds (`experiments.report.race`)."""
    return race_figures(stored, folder)
