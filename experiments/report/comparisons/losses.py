"""The heads over seeds (`study=losses`): regression against classification.

The verdicts are the heads' own claims (`colorize.head_cards`), one each, judged on the metric
the claim names by a Welch 95 % t-interval over seeds (`inconclusive` where it holds zero or
with fewer than 3 seeds a head), or, for a raced study that raced the pair on that metric, by
the race's repeated interval. Today's claims:
- classification: "with rebalancing colours more vividly than regression": the colourfulness of
  the validation photos as colorized (Zhang et al. 2016);
- regression: "has the lower ΔE2000": validation CIEDE2000 (a mean-squared error is minimized
  by the mean colour, which CIEDE2000 also favours).

Each head's validation loss measures something else (MSE on a/b, cross-entropy over bins), so
the tables leave it out: heads are compared on what they share.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from colorize import stats
from colorize.head_cards import HEAD_CARDS, Claim
from experiments.report.race import race_figures, race_sentences, raced_between
from experiments.report.tables import (
    COLUMNS,
    Table,
    group_rows,
    shared_metrics,
    space_column,
    values,
)
from experiments.report.verdicts import Grouping, Verdict, word_of

VERDICTS_HEADING = "Verdicts on regression or classification (Zhang, Isola & Efros 2016)"


def shown(head: str) -> str:
    """A head as tables and verdicts name it."""
    return HEAD_CARDS[head].shown if head in HEAD_CARDS else head


def _ordered(heads) -> list[str]:
    """Heads in the cards' order, any head this code no longer knows last."""
    known = list(HEAD_CARDS)
    return sorted(set(heads), key=lambda k: (known.index(k) if k in known else len(known), k))


def _by_loss(stored) -> dict[str, pd.DataFrame]:
    complete = stored.complete_trials()
    keys = complete[space_column(stored, "loss")].astype(str)
    return {key: complete[keys == key] for key in _ordered(keys)}


def _verdict(stored, groups, head: str, claim: Claim) -> Verdict:
    missing = [shown(k) for k in (head, claim.over) if k not in groups]
    if missing:
        return Verdict(claim.finding, "inconclusive", f"No finished {' or '.join(missing)} trial.")
    spec = COLUMNS[claim.metric]
    # a raced study's looks at these seeds need the race's repeated interval to keep 95 %
    interval = raced_between(stored, f"loss={head}", f"loss={claim.over}", claim.metric)
    if interval is None:
        interval = stats.welch_interval(
            values(groups[head], spec), values(groups[claim.over], spec), "seeds"
        )
    means = ", ".join(f"{shown(k)} {spec.fmt(values(f, spec).mean())}" for k, f in groups.items())
    evidence = (
        f"{spec.header}, {shown(head)} minus {shown(claim.over)}: {interval.describe()}. "
        f"Means over seeds: {means}."
    )
    return Verdict(claim.finding, word_of(interval, +1 if claim.higher else -1), evidence)


def verdicts(stored) -> list[Verdict]:
    """Each head's claims, in the cards' order: the heads asked what to compare."""
    groups = _by_loss(stored)
    return [
        _verdict(stored, groups, head, claim)
        for head, card in HEAD_CARDS.items()
        for claim in card.claims
    ]


def losses_table(stored) -> Table:
    """Per head over seeds: every shared metric, epochs, early stopping."""
    names = [m.name for m in shared_metrics(stored)]
    return Table.of_rows(
        group_rows(_by_loss(stored), names, shown, ("loss", str)),
        name="",
        title="Regression or classification (mean ± std over seeds, validation photos)",
        columns=["Head", "Trials", *(COLUMNS[n].header for n in names), "Early stop"],
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
    return Grouping("head", keys.map(shown), [shown(k) for k in _ordered(keys)])


def figures_of(stored, folder: Path) -> list[tuple[str, str, Path]]:
    """A raced study's intervals narrowing over rounds (`experiments.report.race`)."""
    return race_figures(stored, folder)
