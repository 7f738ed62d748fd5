"""The paper's second result: epoch budgets of 100, 500, 600 and 1000.

Three verdicts, each on trials that actually differ. Two budgets "collapsed into the same run"
when, seed for seed, they stopped at the same epoch with the same curve (early stopping ended
both before the shorter budget did): such a pair cannot test a difference, and says so.

- 100 epochs underfit: lowest validation loss of budget 100 minus budget 500, Welch 95 %
  t-interval over seeds; `reproduced` when above zero.
- 500 gave the lowest validation loss: budgets 600 and 1000 minus 500, each a Welch interval;
  `reproduced` when both lie above zero, `not reproduced` when either lies below.
- validation loss rose at 600 and 1000: the relative rise after the lowest epoch (last / lowest
  - 1) against the `OVERFIT_RISE` threshold, a one-sample interval each; `reproduced` when both
  lie above it, `not reproduced` when either lies below.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from colorize import stats
from colorize.metrics import loss_text
from experiments.report import paper
from experiments.report.tables import (
    COLUMNS,
    Column,
    Table,
    cell,
    early_stopping,
    g4,
    ints,
    label,
    metric_cells,
    space_column,
    stop_record,
)
from experiments.report.verdicts import INCONCLUSIVE, Grouping, Verdict, word_of

OVERFIT_RISE = 0.05  # a final val loss this much above the lowest counts as "rose" (overfit)


def _budget(value) -> int | str:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return str(value)


def _by_budget(stored) -> dict:
    complete = stored.complete_trials()
    column = space_column(stored, "epochs")
    return {
        _budget(budget): frame
        for budget, frame in sorted(complete.groupby(column), key=lambda item: float(item[0]))
    }


def rise(trial: pd.Series) -> float:
    """How far validation loss rose after its lowest epoch (last / lowest - 1)."""
    lowest, last = trial["lowest_val_loss"], trial["last_val_loss"]
    if not (np.isfinite(lowest) and np.isfinite(last)) or lowest <= 0:
        return math.nan
    return float(last / lowest - 1)


def collapsed(stored, first: pd.DataFrame, second: pd.DataFrame) -> bool:
    """Whether two budgets' trials were, seed for seed, the same run (same stopping epoch and
    the same validation-loss curve)."""
    pairs = 0
    for _, a in first.iterrows():
        twins = second[second["seed"] == a["seed"]] if "seed" in second else second
        for _, b in twins.iterrows():
            curve_a = stored.histories[int(a["number"])]["val_loss"].dropna().to_numpy()
            curve_b = stored.histories[int(b["number"])]["val_loss"].dropna().to_numpy()
            if len(curve_a) != len(curve_b) or not np.allclose(curve_a, curve_b, rtol=1e-4):
                return False
            pairs += 1
    return pairs > 0


def _losses(frame: pd.DataFrame) -> list[float]:
    return list(pd.to_numeric(frame["best_val_loss"], errors="coerce").dropna())


def _collapse_note(stored, groups: dict, budgets: tuple[int, ...]) -> str | None:
    same = [
        (a, b)
        for i, a in enumerate(budgets)
        for b in budgets[i + 1 :]
        if collapsed(stored, groups[a], groups[b])
    ]
    if not same:
        return None
    listed = ", ".join(f"{a} and {b}" for a, b in same)
    return f"budgets {listed} collapsed into the same run (same stopping epoch and curve)"


def verdicts(stored) -> list[Verdict]:
    groups = _by_budget(stored)
    findings = (
        "100 epochs underfit (a higher lowest validation loss than 500)",
        "500 epochs gave the lowest validation loss (below 600 and 1000)",
        f"validation loss rose after its lowest epoch at 600 and 1000 (by more than "
        f"{OVERFIT_RISE:.0%})",
    )
    missing = [b for b in paper.EPOCH_BUDGETS if b not in groups]
    if missing:
        why = f"No finished trial with budget {', '.join(map(str, missing))}."
        return [Verdict(finding, INCONCLUSIVE, why) for finding in findings]
    found = []
    note = _collapse_note(stored, groups, (100, 500))
    interval = stats.welch_interval(_losses(groups[100]), _losses(groups[500]), "seeds")
    evidence = f"Budget 100 minus 500: {interval.describe(digits=5)}."
    found.append(_verdict(findings[0], [interval], note, evidence))
    note = _collapse_note(stored, groups, (500, 600, 1000))
    intervals = [
        stats.welch_interval(_losses(groups[b]), _losses(groups[500]), "seeds")
        for b in (600, 1000)
    ]
    evidence = _each("budget {} minus 500: {}", intervals, 5)
    found.append(_verdict(findings[1], intervals, note, evidence))
    intervals = [
        stats.mean_interval([rise(t) for _, t in groups[b].iterrows()], OVERFIT_RISE, "seeds")
        for b in (600, 1000)
    ]
    evidence = _each(f"budget {{}}: mean rise minus {OVERFIT_RISE:.0%} {{}}", intervals, 3)
    found.append(_verdict(findings[2], intervals, note, evidence))
    return found


def _each(template: str, intervals, digits: int) -> str:
    """'budget 600 ...; budget 1000 ....': one interval each for the two long budgets."""
    parts = [
        template.format(budget, interval.describe(digits=digits))
        for budget, interval in zip((600, 1000), intervals, strict=True)
    ]
    return "; ".join(parts) + "."


def _verdict(finding: str, intervals, collapse: str | None, evidence: str) -> Verdict:
    if collapse:
        return Verdict(
            finding, INCONCLUSIVE, f"The {collapse}: they test no difference. {evidence}"
        )
    words = [word_of(interval, +1) for interval in intervals]
    if "not reproduced" in words:
        return Verdict(finding, "not reproduced", evidence)
    return Verdict(finding, words[0] if len(set(words)) == 1 else INCONCLUSIVE, evidence)


def after_lowest(frame: pd.DataFrame) -> str:
    """How validation loss moved after its lowest epoch, over a budget's trials."""
    moves = [rise(t) for _, t in frame.iterrows()]
    rose = [m for m in moves if m > OVERFIT_RISE]
    falling = sum(
        1
        for _, t in frame.iterrows()
        if t["best_epoch"] >= t["epochs_logged"] and t["early_stopped"] is not True
    )
    if rose:
        return f"rose up to {max(rose):.0%} ({len(rose)}/{len(moves)})"
    if falling:
        return f"still falling at the end ({falling}/{len(moves)})"
    return "flat"


def epoch_table(stored) -> Table:
    """Per epoch budget: validation loss and accuracy, epoch of lowest validation loss, how the
    loss moved after it; beside the paper's finding."""
    rows, records = [], []
    for budget, frame in _by_budget(stored).items():
        trained = ", ".join(map(str, sorted(set(ints(frame["epochs"])))))
        cells, record = metric_cells(frame, ["val_loss", "val_accuracy", "train_accuracy"])
        moved = after_lowest(frame)
        finding = paper.EPOCH_FINDINGS.get(budget, "not in the paper")
        rows.append(
            [
                label(budget), trained, str(len(frame)), cell(frame, COLUMNS["epochs_run"]),
                early_stopping(frame), cell(frame, Column("best", "best_epoch", "", g4)),
                cells[0], cell(frame, Column("end", "last_val_loss", "", loss_text)),
                cells[1], cells[2], moved, finding,
            ]
        )  # fmt: skip
        rises = [rise(t) for _, t in frame.iterrows()]
        records.append(
            {
                "budget": budget,
                "epochs_trained_budget": trained,
                "trials": len(frame),
                **record,
                "epochs_run_mean": float(frame["epochs_run"].mean()),
                "best_epoch_mean": float(frame["best_epoch"].mean()),
                "last_val_loss_mean": float(frame["last_val_loss"].mean()),
                **stop_record(frame),
                "overfit_trials": sum(1 for x in rises if x > OVERFIT_RISE),
                "max_val_loss_rise": max(rises) if rises else math.nan,
                "paper_finding": finding,
            }
        )
    complete = stored.complete_trials()
    patience = sorted(set(ints(complete["patience"]))) if "patience" in complete else []
    notes = [v.sentence() for v in verdicts(stored)]
    notes.append(
        "Budget: the paper's epoch count (the study's label); trained for: the epochs this "
        f"profile ({stored.params.get('profile', '?')}) actually allowed. Early stopping "
        f"(patience {', '.join(map(str, patience)) or '?'}) ends a long budget soon after the "
        "lowest validation loss and restores those weights, so a rise shows in the curves and "
        "the 'val. loss at end' column, not in the kept model."
    )
    columns = [
        "Budget", "Trained for", "Trials", "Epochs run", "Early stop",
        "Lowest val. loss at epoch", "Lowest val. loss", "Val. loss at end", "Val. acc. %",
        "Train acc. %", "Val. loss after the lowest", "Paper",
    ]  # fmt: skip
    title = "Epoch budgets: the paper's second result (mean ± std over trials)"
    return Table("", title, columns, rows, pd.DataFrame(records), notes, wide={10, 11})


def tables(stored) -> list[Table]:
    return [epoch_table(stored)]


def grouping(stored) -> Grouping:
    trials = stored.trials.set_index("number", drop=False)
    budget = trials[space_column(stored, "epochs")]
    labels = pd.Series(
        [
            f"{label(b)} (trained {label(t)})"
            for b, t in zip(budget, trials["epochs"], strict=True)
        ],
        index=trials.index,
    )
    order = [text for _, text in sorted(set(zip(budget.map(float), labels, strict=True)))]
    return Grouping("budget (epochs trained)", labels, order)
