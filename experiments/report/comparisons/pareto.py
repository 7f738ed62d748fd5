"""A study of several objectives: the Pareto front of its finished trials (`experiments.analysis.pareto`,
as the study's end registered it), drawn on the first two objectives, listed with its settings
and every report metric, and each Pareto-optimal trial's validation photos.

Such a study has no single best trial. Where the report needs one (the model scored against
gray), it is the front's first, the best by the first objective: the registered `champion`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from experiments.analysis.pareto import PARETO_ALIAS, pareto_front
from experiments.common import records
from experiments.report import figures
from experiments.report.comparisons.settings import failure_table
from experiments.report.stored_study import StoredStudy
from experiments.report.tables import COLUMNS, QUALITY, Row, Table, cell, header, space_column
from experiments.report.verdicts import Grouping, Verdict

MAX_SAMPLES = 12  # sample strips shown, from the front's first
FRONT, DOMINATED, UNFINISHED = "Pareto-optimal", "dominated", "not finished"


def objective_names(stored: StoredStudy) -> list[str]:
    return [metric for metric, _ in stored.objectives]


def front(stored: StoredStudy) -> list[int]:
    """The Pareto-optimal finished trials' numbers, by the first objective."""
    columns = [records.objective_column(metric) for metric in objective_names(stored)]
    points = {
        int(trial["number"]): [pd.to_numeric(trial[c], errors="coerce") for c in columns]
        for _, trial in stored.complete_trials().iterrows()
    }
    return pareto_front(points, [direction for _, direction in stored.objectives])


def _setting(value) -> str:
    """A setting as the table shows it: floats to 3 significant digits."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3g}"
    return str(value)


def front_table(stored: StoredStudy) -> Table:
    """Each Pareto-optimal trial: its rank (the registered alias), settings, objectives first
    and then every other report metric."""
    numbers = front(stored)
    trials = stored.trials.set_index("number", drop=False)
    names = stored.space
    objectives = objective_names(stored)
    shown = objectives + [m for m in QUALITY if m not in objectives]

    def row(rank: int, number: int) -> Row:
        trial = trials.loc[number]
        settings = [trial[space_column(stored, n)] for n in names]
        alias = PARETO_ALIAS.format(rank=rank)
        cells = [alias, str(number), *map(_setting, settings)]
        cells += [cell(trial.to_frame().T, COLUMNS[m]) for m in shown]
        record = {
            "alias": alias,
            "trial": number,
            **dict(zip(names, settings, strict=True)),
            **{m: float(pd.to_numeric(trial[COLUMNS[m].column])) for m in shown},
            "mlflow_run_id": trial["run_id"],
        }
        return cells, record

    described = ", ".join(f"{COLUMNS[m].header} ({d})" for m, d in stored.objectives)
    complete = stored.count("COMPLETE")
    notes = [
        f"Pareto-optimal: no other finished trial is at least as good on every objective "
        f"({described}) and better on one. {len(numbers)} of {complete} finished trial(s) are; "
        f"ordered by {COLUMNS[objectives[0]].header}. The first is the champion: the registered "
        "model's `champion` alias, and the model scored against gray; each is registered as "
        "`pareto-<n>`."
    ]
    return Table.of_rows(
        (row(rank, number) for rank, number in enumerate(numbers, start=1)),
        name="",
        title=f"{stored.name}: the Pareto front of {', '.join(objectives)}",
        columns=[
            "Alias",
            "Trial",
            *(header(n) for n in names),
            *(COLUMNS[m].header for m in shown),
        ],
        notes=notes,
    )


def verdicts(stored) -> list[Verdict]:
    return []  # no finding of the paper to test


def tables(stored) -> list[Table]:
    failures = failure_table(stored)
    return [front_table(stored), *([failures] if failures else [])]


def grouping(stored) -> Grouping:
    """Trials as Pareto-optimal, dominated or not finished."""
    optimal = set(front(stored))
    trials = stored.trials.set_index("number", drop=False)
    labels = pd.Series(
        [
            FRONT if n in optimal else DOMINATED if state == "COMPLETE" else UNFINISHED
            for n, state in zip(trials["number"], trials["state"], strict=True)
        ],
        index=trials.index,
    )
    return Grouping("Pareto standing", labels, [FRONT, DOMINATED, UNFINISHED])


def figures_of(stored, folder: Path) -> list[tuple[str, str, Path]]:
    """The Pareto front on the first two objectives."""
    metrics = objective_names(stored)[:2]
    complete = stored.complete_trials()
    columns = [COLUMNS[m].column for m in metrics]
    points = {
        int(t["number"]): tuple(float(pd.to_numeric(t[c])) * COLUMNS[m].scale
                                for m, c in zip(metrics, columns, strict=True))
        for _, t in complete.iterrows()
    }  # fmt: skip
    optimal = front(stored)
    directions = dict(stored.objectives)
    axes = tuple(
        f"{COLUMNS[m].header} ({'lower' if directions[m] == 'minimize' else 'higher'} is better)"
        for m in metrics
    )
    path = figures.pareto_plot(folder / "pareto-front.png", points, optimal, axes)
    more = len(stored.objectives) - 2
    subtitle = (
        f"{len(complete)} finished trials; the {len(optimal)} Pareto-optimal ones in red, "
        "joined by the first objective"
        + (
            f"; {more} more objective(s) not drawn, so some red points look dominated"
            if more
            else ""
        )
    )
    return [("The Pareto front", subtitle, path)]


def samples(stored) -> tuple[str, list[tuple[str, str]]]:
    """The sample-strip page: each Pareto-optimal trial's validation photos."""
    numbers = front(stored)
    trials = stored.trials.set_index("number", drop=False)
    objectives = objective_names(stored)
    picks = []
    for rank, number in enumerate(numbers[:MAX_SAMPLES], start=1):
        trial = trials.loc[number]
        values = ", ".join(
            f"{COLUMNS[m].header} {cell(trial.to_frame().T, COLUMNS[m])}" for m in objectives
        )
        picks.append(
            (f"{PARETO_ALIAS.format(rank=rank)}: trial {number}\n{values}", trial["run_id"])
        )
    more = f" (the first {MAX_SAMPLES} of {len(numbers)})" if len(numbers) > MAX_SAMPLES else ""
    return f"Pareto-optimal trials{more}", picks
