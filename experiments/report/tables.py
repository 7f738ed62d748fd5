"""The report's table model, the metric columns and the cells shared by every comparison, and the
table of every trial.

"Accuracy" is Keras' `accuracy` on the two a/b outputs, i.e. categorical accuracy (see
`colorize.train`), taken at the epoch of lowest validation loss, whose weights early stopping
keeps; shown in percent as the paper does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from colorize import metrics
from experiments.report import paper
from experiments.report.stored_study import StoredStudy


@dataclass
class Table:
    """One table of the report.

    Attributes:
        name: CSV name suffix ("" -> `<study>.csv`, "trials" -> `<study>-trials.csv`).
        title: heading in the PDF.
        columns: display headers; rows: display cells (strings), one list per row.
        frame: the same table with numbers, for the CSV.
        notes: sentences printed under the table.
        wide: columns of long text (given more room, left-aligned).
    """

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    wide: set[int] = field(default_factory=set)

    @classmethod
    def of_rows(cls, rows: Iterable[Row], **fields: Any) -> Table:
        """A table from rows each given once, as shown and as recorded (`Row`); `fields`: the
        other attributes (name, title, columns, notes, wide)."""
        rows = list(rows)
        return cls(
            rows=[cells for cells, _ in rows],
            frame=pd.DataFrame([record for _, record in rows]),
            **fields,
        )


# One table row: its display cells, and the same row with numbers for the CSV.
Row = tuple[list[str], dict[str, Any]]


@dataclass(frozen=True)
class Column:
    """A report column: its CSV name, the trials column it reads, header, format and scale."""

    name: str
    column: str
    header: str
    fmt: Callable[[float], str]
    scale: float = 1.0


def g4(value: float) -> str:
    return f"{value:.4g}"


# Every metric the registry knows, as a report column; QUALITY: those the tables show.
COLUMNS = {m.name: Column(m.name, m.column, m.label, m.fmt, m.scale) for m in metrics.METRICS}
QUALITY = list(metrics.REPORT_METRICS)
TABLE_COLUMNS = tuple(COLUMNS[name] for name in [*QUALITY, "epochs_run"])


def shared_metrics(stored: StoredStudy) -> list[Column]:
    """The quality columns a study's trials can be compared on: every one, less those each head
    measures its own way (the validation loss) where trials of several heads are shown."""
    heads = stored.trials.get(space_column(stored, "loss"), pd.Series(dtype=object)).dropna()
    several = heads.nunique() > 1 or "loss" in stored.space
    return [
        COLUMNS[name] for name in QUALITY if not (several and metrics.METRIC[name].head_specific)
    ]


def values(frame: pd.DataFrame, metric: Column) -> np.ndarray:
    if metric.column not in frame:
        return np.array([])
    column = pd.to_numeric(frame[metric.column], errors="coerce").to_numpy(dtype=float)
    return column[np.isfinite(column)] * metric.scale


def mean_std(frame: pd.DataFrame, metric: Column) -> tuple[float, float, int]:
    """Mean, sample standard deviation (NaN for one value) and count of a metric."""
    found = values(frame, metric)
    if not len(found):
        return math.nan, math.nan, 0
    std = float(np.std(found, ddof=1)) if len(found) > 1 else math.nan
    return float(np.mean(found)), std, len(found)


def show(mean: float, std: float, fmt: Callable[[float], str]) -> str:
    """'12.34 ± 0.56', '12.34' for one value, '–' for none."""
    if math.isnan(mean):
        return "–"
    if math.isnan(std):
        if fmt is COLUMNS["epochs_run"].fmt and float(mean).is_integer():
            return str(int(mean))
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def cell(frame: pd.DataFrame, metric: Column) -> str:
    return show(*mean_std(frame, metric)[:2], metric.fmt)


def metric_cells(frame: pd.DataFrame, names: Sequence[str]) -> tuple[list[str], dict]:
    """Display cells and CSV values (`<name>_mean`, `<name>_std`) for metrics over `frame`."""
    cells, record = [], {}
    for name in names:
        mean, std, _ = mean_std(frame, COLUMNS[name])
        cells.append(show(mean, std, COLUMNS[name].fmt))
        record[f"{name}_mean"], record[f"{name}_std"] = mean, std
    return cells, record


def ints(series: pd.Series) -> list[int]:
    return [int(v) for v in pd.to_numeric(series, errors="coerce").dropna()]


def early_stopping(frame: pd.DataFrame) -> str:
    """Where early stopping stopped: 'no', 'at 45, 52' or '1 of 3: at 45'."""
    stopped = frame[frame["early_stopped"] == True]  # noqa: E712  (object column of bools/None)
    if not len(stopped):
        return "no"
    epochs = ", ".join(map(str, ints(stopped["early_stopped_epoch"])))
    if len(stopped) == len(frame):
        return f"at {epochs}"
    return f"{len(stopped)} of {len(frame)}: at {epochs}"


def stop_record(frame: pd.DataFrame) -> dict:
    """CSV columns on early stopping."""
    return {
        "early_stopped_trials": int((frame["early_stopped"] == True).sum()),  # noqa: E712
        "early_stopped_epochs": ",".join(map(str, ints(frame["early_stopped_epoch"].dropna()))),
    }


HEADERS = {
    "kernel_size": "Kernel",
    "epochs": "Budget",
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
}


# A group's own cells after the shared ones, and its own CSV fields: (cells, {field: value}).
GroupExtra = Callable[[str, pd.DataFrame], tuple[list[str], dict]]


def group_rows(
    groups: dict[str, pd.DataFrame],
    names: Sequence[str],
    first: Callable[[str], str],
    key_field: tuple[str, Callable[[str], str]],
    extra: GroupExtra = lambda key, frame: ([], {}),
) -> list[Row]:
    """One row per group of trials over seeds (the optimizers', the heads' tables): its name
    (`first(key)`), trial count, each metric's mean ± std, early stopping, then `extra`'s cells;
    and its CSV record: the group (`key_field`: the field and what it holds of the key), trials,
    seeds, the metrics' means and stds, `extra`'s fields, the early-stopping counts."""
    field_name, field_value = key_field
    rows = []
    for key, frame in groups.items():
        cells, record = metric_cells(frame, names)
        own_cells, own_record = extra(key, frame)
        shown = [first(key), str(len(frame)), *cells, early_stopping(frame), *own_cells]
        rows.append(
            (
                shown,
                {
                    field_name: field_value(key),
                    "trials": len(frame),
                    "seeds": ",".join(map(str, sorted(ints(frame["seed"])))),
                    **record,
                    **own_record,
                    **stop_record(frame),
                },
            )
        )
    return rows


def header(name: str) -> str:
    """Display header of a search-space name."""
    return HEADERS.get(name, name.replace("_", " ").capitalize())


def space_column(stored: StoredStudy, name: str) -> str:
    """The trials column holding a space value: the study's label (`space.epochs=500`) if stored."""
    return f"space.{name}" if f"space.{name}" in stored.trials else name


def label(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):  # a sampled value (learning rate, ...): 4 digits say it
        return f"{value:.4g}"
    return str(value)


def display(name: str, value) -> str:
    """A search-space value as the report shows it (optimizers by their display names)."""
    return paper.optimizer_name(value) if name == "optimizer" else label(value)


def trials_table(stored: StoredStudy) -> Table:
    """One row per trial, in trial order."""
    names = stored.space
    columns_in = [space_column(stored, name) for name in names]
    shown = QUALITY

    def number(value) -> str:
        return "–" if pd.isna(value) else str(int(value))

    rows, records = [], []
    for _, trial in stored.trials.sort_values("number").iterrows():
        one = trial.to_frame().T
        settings = [display(n, trial[c]) for n, c in zip(names, columns_in, strict=True)]
        rows.append(
            [
                str(int(trial["number"])),
                *settings,
                trial["state"].lower(),
                *(cell(one, COLUMNS[name]) for name in shown),
                number(trial["epochs_run"]),
                number(trial["best_epoch"]),
                number(trial["early_stopped_epoch"]),
                "–" if pd.isna(trial["seconds"]) else f"{trial['seconds']:.1f}",
            ]
        )
        found = {m.name: values(one, m) for m in TABLE_COLUMNS}
        records.append(
            {
                "trial": int(trial["number"]),
                **{name: trial[col] for name, col in zip(names, columns_in, strict=True)},
                "epochs_budget": trial.get("epochs"),
                "state": trial["state"],
                **{name: v[0] if len(v) else math.nan for name, v in found.items()},
                "best_epoch": trial["best_epoch"],
                "last_val_loss": trial["last_val_loss"],
                "early_stopped": trial["early_stopped"],
                "early_stopped_epoch": trial["early_stopped_epoch"],
                "seconds": trial["seconds"],
                "fail_reason": trial["fail_reason"],
                "mlflow_run_id": trial["run_id"],
            }
        )
    return Table(
        name="trials",
        title="Every trial",
        columns=[
            "Trial",
            *(header(name) for name in names),
            "State",
            *(COLUMNS[n].header for n in shown),
            "Epochs run",
            "Best epoch",
            "Early stop at",
            "Seconds",
        ],
        rows=rows,
        frame=pd.DataFrame(records),
    )
