"""What every comparison shares: the study's settings (its search space, seeds aside), its best
trial, the table of each combination of settings and the table of trials that failed."""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from colorize.metrics import loss_text
from experiments.analysis.ranking import Ranking, rank
from experiments.common import records
from experiments.engines import racing
from experiments.report.race import BEST_VS_RUNNER_UP, raced_interval
from experiments.report.stored_study import StoredStudy
from experiments.report.tables import (
    COLUMNS,
    Table,
    cell,
    display,
    header,
    label,
    metric_cells,
    shared_metrics,
    space_column,
)
from experiments.report.verdicts import Grouping


def searched_settings(stored: StoredStudy) -> list[str]:
    """The study's search-space names other than the seed (seeds are averaged over)."""
    return [name for name in stored.space if name != "seed"]


def objective(stored: StoredStudy) -> tuple[str, str]:
    """(the trials column of the study's objective, its direction); with several objectives,
    the first (the `pareto` comparison ranks by the front instead)."""
    metric = stored.params.get("metric", "val_loss")
    return records.objective_column(metric), stored.params.get("direction", "minimize")


def best_trial(stored: StoredStudy, frame: pd.DataFrame | None = None) -> pd.Series:
    """The best finished trial by the study's objective (the one the study registers as its
    model), from `frame` or all finished trials."""
    frame = stored.complete_trials() if frame is None else frame
    column, direction = objective(stored)
    return frame.sort_values([column, "number"], ascending=[direction == "minimize", True]).iloc[0]


def ranking(stored: StoredStudy) -> Ranking | None:
    """The best combination of settings against the runner-up, over seeds; in a study that
    raced them, judged by the race's repeated interval (`raced_interval`)."""
    column, direction = objective(stored)
    names = searched_settings(stored) + (["seed"] if "seed" in stored.space else [])
    rows = [
        {**{n: trial[space_column(stored, n)] for n in names}, "value": trial[column]}
        for _, trial in stored.complete_trials().iterrows()
    ]
    found = rank(rows, direction)
    metric = stored.params.get("metric", "val_loss")
    raced = raced_interval(stored, BEST_VS_RUNNER_UP, metric)
    if found is None or found.runner_up is None or raced is None:
        return found

    best, runner_up = (racing.shown(tuple(g.items())) for g in (found.best, found.runner_up))
    if (raced["a"], raced["b"]) != (best, runner_up):  # named as the race names its groups
        return found  # the race judged other groups at the look that decided it
    return replace(found, interval=raced["interval"])


def ranking_note(stored: StoredStudy) -> str:
    found = ranking(stored)
    if found is None:
        return ""

    def shown(settings: dict) -> str:
        return ", ".join(f"{n} {display(n, v)}" for n, v in settings.items()) or "the setting"

    sentence = found.sentence(stored.params.get("metric", "val_loss"), shown)
    return sentence[0].upper() + sentence[1:] + "."


def _state_cell(frame: pd.DataFrame) -> str:
    counts = frame["state"].value_counts()
    parts = [f"{counts[s]} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if s in counts]
    return ", ".join(parts)


def _combinations(stored: StoredStudy, names: list[str]) -> list[tuple]:
    """(settings, trials, finished or pruned ones, those shown, mean objective) per combination
    of settings with a finished or pruned trial, best mean objective first (finished trials
    where there are any, else the pruned ones up to their pruning)."""
    column, direction = objective(stored)
    sign = 1.0 if direction == "minimize" else -1.0
    groups = []
    columns_in = [space_column(stored, name) for name in names]
    for key, frame in stored.trials.groupby(columns_in, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        done = frame[frame["state"].isin(("COMPLETE", "PRUNED"))]
        if len(done):
            finished = frame[frame["state"] == "COMPLETE"]
            shown = finished if len(finished) else done
            by = shown[column] if column in shown else shown["best_val_loss"]
            groups.append(
                (key, frame, done, shown, float(pd.to_numeric(by, errors="coerce").mean()))
            )
    groups.sort(key=lambda g: (math.isnan(g[4]), sign * g[4], str(g[0])))
    return groups


def _combination_row(names, key, frame, done, shown, metric_names) -> tuple[list[str], dict]:
    """A combination's display cells and CSV record."""
    cells, record = metric_cells(shown, metric_names)
    params = pd.to_numeric(done["num_params"], errors="coerce").dropna()
    size = f"{params.iloc[0] / 1e6:.2f} M" if len(params) else "–"
    settings = [display(n, v) for n, v in zip(names, key, strict=True)]
    row = [*settings, str(len(frame)), size, *cells, cell(done, COLUMNS["epochs_run"]),
           _state_cell(frame)]  # fmt: skip
    return row, {
        **dict(zip(names, key, strict=True)),
        "trials": len(frame),
        "complete": int((frame["state"] == "COMPLETE").sum()),
        "pruned": int((frame["state"] == "PRUNED").sum()),
        "failed": int((frame["state"] == "FAIL").sum()),
        "num_params": float(params.iloc[0]) if len(params) else math.nan,
        **record,
        "epochs_run_mean": float(done["epochs_run"].mean()),
        "fail_reason": "",
    }


def settings_table(stored: StoredStudy) -> Table:
    """Per combination of the study's settings (seeds averaged), best mean objective first;
    combinations without a finished or pruned trial are in `failure_table`."""
    names = searched_settings(stored)
    metric_names = [m.name for m in shared_metrics(stored)]
    groups = _combinations(stored, names)
    rows, records_ = [], []
    for key, frame, done, shown, _ in groups:
        row, record = _combination_row(names, key, frame, done, shown, metric_names)
        rows.append(row)
        records_.append(record)
    failed = failed_trials(stored)
    for _, trial in failed.iterrows():
        records_.append(
            {
                **{name: trial[space_column(stored, name)] for name in names},
                "trials": 1, "complete": 0, "pruned": 0, "failed": 1,
                "fail_reason": trial["fail_reason"],
            }
        )  # fmt: skip
    notes = []
    if groups:
        best_key, _, _, _, best_value = groups[0]
        metric = stored.params.get("metric", "val_loss")
        spec = COLUMNS.get(metric)
        value = spec.fmt(best_value * spec.scale) if spec else loss_text(best_value)
        best = ", ".join(f"{n} {label(v)}" for n, v in zip(names, best_key, strict=True))
        notes.append(
            f"Best mean {metric} shown: {best} ({value}); {len(groups)} combination(s) trained"
            + (
                f", {len(failed)} trial(s) could not be built or trained (listed below)."
                if len(failed)
                else "; every trial could be built and trained."
            )
        )
    note = ranking_note(stored)
    if note:
        notes.append(note)
    columns = [*(header(n) for n in names), "Trials", "Params"]
    columns += [*(COLUMNS[n].header for n in metric_names), "Epochs run", "State"]
    return Table(
        name="",
        title=f"{stored.name}: each combination of settings (mean ± std over finished trials)",
        columns=columns,
        rows=rows,
        frame=pd.DataFrame(records_),
        notes=notes,
    )


def failed_trials(stored: StoredStudy) -> pd.DataFrame:
    return stored.trials[stored.trials["state"] == "FAIL"]


def failure_table(stored: StoredStudy) -> Table | None:
    """Trials that could not be built or trained, with the reason each recorded."""
    failed = failed_trials(stored)
    if not len(failed):
        return None
    names = searched_settings(stored)
    columns_in = [space_column(stored, name) for name in names]
    rows, records_ = [], []
    for _, trial in failed.sort_values("number").iterrows():
        kind, _, reason = str(trial["fail_reason"]).partition(": ")
        if not reason:
            kind, reason = "failed", kind
        settings = [display(n, trial[c]) for n, c in zip(names, columns_in, strict=True)]
        rows.append([str(int(trial["number"])), *settings, kind, reason])
        records_.append(
            {"trial": int(trial["number"]), **dict(zip(names, settings, strict=True)),
             "kind": kind, "reason": reason}
        )  # fmt: skip
    return Table(
        name="failed",
        title="Trials that could not be built or trained, with their reason",
        columns=["Trial", *(header(name) for name in names), "Kind", "Reason"],
        rows=rows,
        frame=pd.DataFrame(records_),
        wide={len(names) + 2},
    )


def settings_grouping(stored: StoredStudy) -> Grouping:
    """Trials grouped by their combination of settings, best validation loss first."""
    trials = stored.trials.set_index("number", drop=False)
    names = searched_settings(stored)
    columns = [space_column(stored, name) for name in names]
    labels = trials[columns].apply(
        lambda row: " / ".join(display(n, v) for n, v in zip(names, row, strict=True)), axis=1
    )
    loss = trials.assign(_label=labels).groupby("_label")["best_val_loss"].mean()
    order = list(loss.sort_values(na_position="last").index)
    return Grouping(" / ".join(header(n).lower() for n in names), labels, order)
