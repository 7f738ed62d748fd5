"""The report's tables, computed from a `StoredStudy`: each as display text (for the PDF) and as a
numeric frame (for the CSV beside it), with the plain sentences that compare it with the paper.

- `optimizer_table`: the paper's first result (Adamax vs Adam vs RMSprop), mean ± std over seeds.
- `epoch_table`: the paper's second result (budgets 100/500/600/1000), with under-/overfitting.
- `settings_table` + `failure_table`: any other space (the architecture study's kernel, padding
  and strides), with the combinations that could not be built and why.
- `trials_table`: every trial, one row each.

"Accuracy" is Keras' `accuracy` on the two a/b outputs, i.e. categorical accuracy (see
`colorize.train`), taken at the epoch of lowest validation loss, whose weights early stopping
keeps; shown in percent as the paper does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments import paper_results as paper
from experiments.report_store import StoredStudy

OVERFIT_RISE = 0.05  # a final val loss this much above the lowest counts as "rose" (overfit)
TIE = 0.005  # relative difference under which two validation losses count as equal


@dataclass
class Table:
    """One table of the report.

    Attributes:
        name: CSV name suffix ("" -> `<study>.csv`, "trials" -> `<study>-trials.csv`).
        title: heading in the PDF.
        columns: display headers; rows: display cells (strings), one list per row.
        frame: the same table with numbers, for the CSV.
        notes: sentences printed under the table (the comparison with the paper first).
        wrap: column index -> characters per line, for long text cells.
    """

    name: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    wrap: dict[int, int] = field(default_factory=dict)


# (CSV name, trials column, scale, display header, format)
@dataclass(frozen=True)
class Metric:
    name: str
    column: str
    header: str
    fmt: Callable[[float], str]
    scale: float = 1.0


def _g4(value: float) -> str:
    return f"{value:.4g}"


def _loss(value: float) -> str:
    """Losses here are MSE on a/b / 128, mostly 0.001 to 0.1: five decimals keep them comparable."""
    return f"{value:.5f}" if abs(value) < 1 else f"{value:.4g}"


METRICS = (
    Metric("val_accuracy", "best_val_accuracy", "Val. acc. %", "{:.2f}".format, 100.0),
    Metric("train_accuracy", "train_accuracy", "Train acc. %", "{:.2f}".format, 100.0),
    Metric("val_loss", "best_val_loss", "Val. loss", _loss),
    Metric("psnr", "psnr", "PSNR dB", "{:.2f}".format),
    Metric("ssim", "ssim", "SSIM", "{:.3f}".format),
    Metric("delta_e2000", "delta_e2000", "ΔE2000", "{:.2f}".format),
    Metric("epochs_run", "epochs_run", "Epochs run", "{:.1f}".format),
)
METRIC = {m.name: m for m in METRICS}


def values(frame: pd.DataFrame, metric: Metric) -> np.ndarray:
    if metric.column not in frame:
        return np.array([])
    column = pd.to_numeric(frame[metric.column], errors="coerce").to_numpy(dtype=float)
    return column[np.isfinite(column)] * metric.scale


def mean_std(frame: pd.DataFrame, metric: Metric) -> tuple[float, float, int]:
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
        if fmt is METRIC["epochs_run"].fmt and float(mean).is_integer():
            return str(int(mean))
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def metric_cells(frame: pd.DataFrame, names: Sequence[str]) -> tuple[list[str], dict]:
    """Display cells and CSV values (`<name>_mean`, `<name>_std`) for metrics over `frame`."""
    cells, record = [], {}
    for name in names:
        metric = METRIC[name]
        mean, std, _ = mean_std(frame, metric)
        cells.append(show(mean, std, metric.fmt))
        record[f"{name}_mean"], record[f"{name}_std"] = mean, std
    return cells, record


def _ints(series: pd.Series) -> list[int]:
    return [int(v) for v in pd.to_numeric(series, errors="coerce").dropna()]


def early_stopping(frame: pd.DataFrame) -> str:
    """Where early stopping stopped: 'no', 'at 45, 52' or '1 of 3: at 45'."""
    stopped = frame[frame["early_stopped"] == True]  # noqa: E712  (object column of bools/None)
    if not len(stopped):
        return "no"
    epochs = ", ".join(map(str, _ints(stopped["early_stopped_epoch"])))
    if len(stopped) == len(frame):
        return f"at {epochs}"
    return f"{len(stopped)} of {len(frame)}: at {epochs}"


HEADERS = {
    "kernel_size": "Kernel",
    "epochs": "Budget",
    "learning_rate": "Learning rate",
    "batch_size": "Batch size",
}


def header(name: str) -> str:
    """Display header of a search-space name."""
    return HEADERS.get(name, name.replace("_", " ").capitalize())


def space_column(stored: StoredStudy, name: str) -> str:
    """The trials column holding a space value: the study's label (`space.epochs=500`) if stored."""
    return f"space.{name}" if f"space.{name}" in stored.trials else name


def _label(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _display(name: str, value) -> str:
    """A search-space value as the report shows it (optimizers by their display names)."""
    return paper.optimizer_name(value) if name == "optimizer" else _label(value)


# --- the paper's first result: optimizers ------------------------------------------------------
def _optimizer_key(value) -> str:
    key = str(value).lower()
    return "rmsprop" if key == "rmse" else key


def optimizer_table(stored: StoredStudy) -> Table:
    """Per optimizer over seeds: accuracies, loss, colour metrics, epochs, early stopping."""
    complete = stored.complete_trials().copy()
    complete["_optimizer"] = complete[space_column(stored, "optimizer")].map(_optimizer_key)
    order = list(paper.OPTIMIZER_FINDINGS)
    groups = sorted(
        complete.groupby("_optimizer"),
        key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0]),
    )
    names = [m.name for m in METRICS]
    rows, records = [], []
    for key, frame in groups:
        cells, record = metric_cells(frame, names)
        stop = early_stopping(frame)
        finding = paper.OPTIMIZER_FINDINGS.get(key, "not in the paper")
        rows.append([paper.optimizer_name(key), str(len(frame)), *cells, stop, finding])
        records.append(
            {
                "optimizer": paper.optimizer_name(key),
                "trials": len(frame),
                "seeds": ",".join(map(str, sorted(_ints(frame["seed"])))),
                **record,
                "best_epoch_mean": float(frame["best_epoch"].mean()),
                "early_stopped_trials": int((frame["early_stopped"] == True).sum()),  # noqa: E712
                "early_stopped_epochs": ",".join(
                    map(str, _ints(frame["early_stopped_epoch"].dropna()))
                ),
                "paper_finding": finding,
            }
        )
    frame = pd.DataFrame(records)
    columns = ["Optimizer", "Trials", *(METRIC[n].header for n in names), "Early stop"]
    return Table(
        name="",
        title="Optimizers: the paper's first result (mean ± std over seeds)",
        columns=[*columns, "Paper"],
        rows=rows,
        frame=frame,
        notes=[optimizer_verdict(frame), *optimizer_context(frame)],
        wrap={len(columns): 24},
    )


def optimizer_verdict(frame: pd.DataFrame) -> str:
    """One sentence: did Adamax have the highest and RMSprop the lowest validation accuracy?"""
    accuracy = dict(zip(frame["optimizer"], frame["val_accuracy_mean"], strict=True))
    high, low = (
        paper.optimizer_name(k) for k in (paper.OPTIMIZER_HIGHEST, paper.OPTIMIZER_LOWEST)
    )
    missing = [name for name in (high, low) if name not in accuracy]
    if missing:
        return (
            f"The paper's ordering cannot be checked on this data: no finished "
            f"{' or '.join(missing)} trial."
        )
    ranked = sorted(accuracy, key=accuracy.get, reverse=True)
    gap = accuracy[high] - accuracy[low]
    listed = " > ".join(f"{name} {accuracy[name]:.2f}%" for name in ranked)
    if ranked[0] == high and ranked[-1] == low:
        return (
            f"The paper's ordering reproduced on this data: {high} had the highest and {low} "
            f"the lowest validation accuracy ({listed}), {gap:.2f} points apart "
            f"(paper: about {paper.OPTIMIZER_GAP_POINTS:.0f})."
        )
    return (
        f"The paper's ordering (highest {high}, lowest {low}) did not reproduce on this data: "
        f"{listed}; {high} minus {low} is {gap:+.2f} points "
        f"(paper: about +{paper.OPTIMIZER_GAP_POINTS:.0f})."
    )


def optimizer_context(frame: pd.DataFrame) -> list[str]:
    """A caveat when seeds are too few, or too noisy, to order the optimizers."""
    if not len(frame):
        return []
    if frame["trials"].max() < 2:
        return [
            "Only one seed per optimizer here, so the ordering is a single draw, not a test; "
            "the standard deviation needs at least two seeds."
        ]
    if frame["trials"].min() < 2:
        single = ", ".join(frame.loc[frame["trials"] < 2, "optimizer"])
        return [f"{single}: a single finished trial so far, so no standard deviation."]
    spread = frame["val_accuracy_std"].max()
    diff = frame["val_accuracy_mean"].max() - frame["val_accuracy_mean"].min()
    if diff <= spread:
        return [
            f"The spread between optimizers ({diff:.2f} points) is within the spread over seeds "
            f"(std up to {spread:.2f}), so the ordering is not clear-cut."
        ]
    return []


def objective_column(metric: str) -> str:
    """The trials column holding a study objective's value."""
    return {"val_loss": "best_val_loss", "val_accuracy": "best_val_accuracy"}.get(metric, metric)


def best_trial(stored: StoredStudy, frame: pd.DataFrame | None = None) -> pd.Series:
    """The best finished trial by the study's objective (the one the study registers as its
    model), from `frame` or all finished trials."""
    frame = stored.complete_trials() if frame is None else frame
    column = objective_column(stored.params.get("metric", "val_loss"))
    ascending = stored.params.get("direction", "minimize") == "minimize"
    return frame.sort_values([column, "number"], ascending=[ascending, True]).iloc[0]


def paper_table(stored: StoredStudy, frame: pd.DataFrame) -> Table:
    """The paper's optimizer findings and final accuracies beside ours."""
    accuracy = dict(zip(frame["optimizer"], frame["val_accuracy_mean"], strict=True))
    ranked = sorted(accuracy, key=accuracy.get, reverse=True)
    high, low = (
        paper.optimizer_name(k) for k in (paper.OPTIMIZER_HIGHEST, paper.OPTIMIZER_LOWEST)
    )
    gap = accuracy[high] - accuracy[low] if high in accuracy and low in accuracy else math.nan
    best = best_trial(stored)
    where = (
        f"trial #{int(best['number'])}, {paper.optimizer_name(best['optimizer'])}, seed "
        f"{_label(best['seed'])}, epoch {int(best['best_epoch'])} of {_label(best['epochs'])}"
    )
    records = [
        ("Highest validation accuracy", high, f"{ranked[0]} ({accuracy[ranked[0]]:.2f}%)"),
        ("Lowest validation accuracy", low, f"{ranked[-1]} ({accuracy[ranked[-1]]:.2f}%)"),
        (
            f"{high} minus {low}, val. acc. points",
            f"about {paper.OPTIMIZER_GAP_POINTS:.0f}",
            "–" if math.isnan(gap) else f"{gap:+.2f}",
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
    table = pd.DataFrame(records, columns=["finding", "paper", "ours"])
    return Table(
        name="paper",
        title="The paper's figures beside ours",
        columns=["Finding", "Paper", "Ours"],
        rows=[list(r) for r in records],
        frame=table,
        notes=[
            f"Ours at profile {stored.params.get('profile', '?')} on "
            f"{stored.params.get('dataset', '?')} ({stored.params.get('dataset_photos', '?')} "
            f"photos at {stored.params.get('image_size', '?')} px); the paper trained on about "
            "300 landscape photos at 256x256."
        ],
    )


# --- the paper's second result: epochs ----------------------------------------------------------
def after_lowest(trial: pd.Series) -> tuple[str, float]:
    """How validation loss moved after its lowest epoch: ('rose', rise), ('still falling', 0) or
    ('flat', rise)."""
    lowest, last = trial["lowest_val_loss"], trial["last_val_loss"]
    if not (np.isfinite(lowest) and np.isfinite(last)) or lowest <= 0:
        return "unknown", math.nan
    rise = last / lowest - 1
    if rise > OVERFIT_RISE:
        return "rose", rise
    if trial["best_epoch"] >= trial["epochs_logged"] and trial["early_stopped"] is not True:
        return "still falling", rise
    return "flat", rise


def overfit_cell(frame: pd.DataFrame) -> tuple[str, int, int, float]:
    """Display text, trials that rose, trials still falling, largest rise."""
    moves = [after_lowest(trial) for _, trial in frame.iterrows()]
    rose = [rise for kind, rise in moves if kind == "rose"]
    falling = sum(kind == "still falling" for kind, _ in moves)
    n = len(moves)
    if rose:
        return (
            f"yes: val. loss rose up to {max(rose):.0%} ({len(rose)}/{n})",
            len(rose),
            falling,
            max(rose),
        )
    if falling:
        return f"no: still falling at the end ({falling}/{n})", 0, falling, math.nan
    return "no", 0, 0, math.nan


def epoch_table(stored: StoredStudy) -> Table:
    """Per epoch budget: validation loss and accuracy, epoch of lowest validation loss, whether
    longer training overfit; beside the paper's finding."""
    complete = stored.complete_trials()
    column = space_column(stored, "epochs")
    rows, records = [], []
    for budget, frame in sorted(complete.groupby(column), key=lambda item: float(item[0])):
        trained = ", ".join(map(str, sorted(set(_ints(frame["epochs"])))))
        cells, record = metric_cells(frame, ["val_loss", "val_accuracy", "train_accuracy"])
        best_epoch = show(*mean_std(frame, Metric("best", "best_epoch", "", _g4))[:2], _g4)
        end_loss = show(*mean_std(frame, Metric("end", "last_val_loss", "", _loss))[:2], _loss)
        run = show(*mean_std(frame, METRIC["epochs_run"])[:2], METRIC["epochs_run"].fmt)
        overfit, rose, falling, rise = overfit_cell(frame)
        finding = paper.EPOCH_FINDINGS.get(int(float(budget)), "not in the paper")
        rows.append(
            [
                _label(budget),
                trained,
                str(len(frame)),
                run,
                early_stopping(frame),
                best_epoch,
                cells[0],
                end_loss,
                cells[1],
                cells[2],
                overfit,
                finding,
            ]
        )
        records.append(
            {
                "budget": parse_budget(budget),
                "epochs_trained_budget": trained,
                "trials": len(frame),
                **record,
                "epochs_run_mean": float(frame["epochs_run"].mean()),
                "best_epoch_mean": float(frame["best_epoch"].mean()),
                "last_val_loss_mean": float(frame["last_val_loss"].mean()),
                "early_stopped_trials": int((frame["early_stopped"] == True).sum()),  # noqa: E712
                "early_stopped_epochs": ",".join(
                    map(str, _ints(frame["early_stopped_epoch"].dropna()))
                ),
                "overfit_trials": rose,
                "still_falling_trials": falling,
                "max_val_loss_rise": rise,
                "paper_finding": finding,
            }
        )
    frame = pd.DataFrame(records)
    columns = [
        "Budget",
        "Trained for",
        "Trials",
        "Epochs run",
        "Early stop",
        "Lowest val. loss at epoch",
        "Lowest val. loss",
        "Val. loss at end",
        "Val. acc. %",
        "Train acc. %",
        "Overfit after the lowest?",
        "Paper",
    ]
    patience = sorted(set(_ints(complete["patience"]))) if "patience" in complete else []
    notes = [epoch_verdict(frame)]
    notes.append(
        "Budget: the paper's epoch count (the study's label); trained for: the epochs this "
        f"profile ({stored.params.get('profile', '?')}) actually allowed. Early stopping "
        f"(patience {', '.join(map(str, patience)) or '?'}) ends a long budget soon after the "
        "lowest validation loss and restores those weights, so a rise shows in the curves and "
        "the 'val. loss at end' column, not in the kept model. 'Rose' means the last epoch's "
        f"validation loss was more than {OVERFIT_RISE:.0%} above the lowest."
    )
    return Table(
        name="",
        title="Epoch budgets: the paper's second result (mean ± std over trials)",
        columns=columns,
        rows=rows,
        frame=frame,
        notes=notes,
        wrap={0: 8, 1: 9, 5: 10, 7: 9, 10: 20, 11: 14},
    )


def parse_budget(value) -> int | str:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return str(value)


def epoch_verdict(frame: pd.DataFrame) -> str:
    """Which of the paper's three epoch findings held on this data."""
    by_budget = {row["budget"]: row for _, row in frame.iterrows()}
    missing = [b for b in paper.EPOCH_BUDGETS if b not in by_budget]
    if missing:
        return (
            "The paper's epoch findings cannot all be checked: no finished trial with budget "
            f"{', '.join(map(str, missing))}."
        )
    losses = {b: by_budget[b]["val_loss_mean"] for b in paper.EPOCH_BUDGETS}
    lowest = min(losses.values())
    best = [b for b, v in losses.items() if v <= lowest * (1 + TIE)]
    short = by_budget[100]
    underfit = short["still_falling_trials"] > 0 or losses[100] > lowest * (1 + TIE)
    best_500 = paper.EPOCH_BEST in best
    rose = all(by_budget[b]["overfit_trials"] > 0 for b in (600, 1000))
    held = sum([underfit, best_500, rose])
    if len(best) > 1:
        lowest_text = f"tied between {', '.join(map(str, best[:-1]))} and {best[-1]}"
    else:
        lowest_text = str(best[0])
    return (
        f"Of the paper's three epoch findings, {held} held on this data: 100 epochs underfit "
        f"- {'yes' if underfit else 'no'}; 500 gave the lowest validation loss - "
        f"{'yes' if best_500 else 'no'} (lowest: {lowest_text}); validation loss rose at 600 "
        f"and 1000 - {'yes' if rose else 'no'}."
    )


# --- any other space: the architecture study -----------------------------------------------------
def setting_names(stored: StoredStudy) -> list[str]:
    """The study's search-space names other than the seed (seeds are averaged over)."""
    return [name for name in stored.space if name != "seed"]


def _state_cell(frame: pd.DataFrame) -> str:
    counts = frame["state"].value_counts()
    parts = [f"{counts[s]} {s.lower()}" for s in ("COMPLETE", "PRUNED", "FAIL") if s in counts]
    return ", ".join(parts)


def settings_table(stored: StoredStudy) -> Table:
    """Per combination of the study's settings (seeds averaged), best validation loss first;
    combinations without a finished trial go to `failure_table`."""
    names = setting_names(stored)
    columns_in = [space_column(stored, name) for name in names]
    metrics = ["val_loss", "val_accuracy", "train_accuracy", "psnr", "ssim", "delta_e2000"]
    groups = []
    for key, frame in stored.trials.groupby(columns_in, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        done = frame[frame["state"].isin(("COMPLETE", "PRUNED"))]
        if not len(done):
            continue
        finished = frame[frame["state"] == "COMPLETE"]
        groups.append((key, frame, done, finished))
    groups.sort(key=lambda g: (len(g[3]) == 0, g[3]["best_val_loss"].mean(), str(g[0])))
    rows, records = [], []
    for key, frame, done, finished in groups:
        cells, record = metric_cells(finished if len(finished) else done, metrics)
        params = pd.to_numeric(done["num_params"], errors="coerce").dropna()
        size = f"{params.iloc[0] / 1e6:.2f} M" if len(params) else "–"
        run = show(*mean_std(done, METRIC["epochs_run"])[:2], METRIC["epochs_run"].fmt)
        shown = [_display(n, v) for n, v in zip(names, key, strict=True)]
        rows.append([*shown, str(len(frame)), size, *cells, run, _state_cell(frame)])
        records.append(
            {
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
        )
    for _, trial in failed_trials(stored).iterrows():
        records.append(
            {
                **{name: trial[col] for name, col in zip(names, columns_in, strict=True)},
                "trials": 1,
                "complete": 0,
                "pruned": 0,
                "failed": 1,
                "fail_reason": trial["fail_reason"],
            }
        )
    headers = [header(name) for name in names]
    columns = [
        *headers,
        "Trials",
        "Params",
        *(METRIC[n].header for n in metrics),
        "Epochs run",
        "State",
    ]
    notes = []
    if len(groups):
        best_key, _, _, best_finished = groups[0]
        best = ", ".join(f"{n} {_label(v)}" for n, v in zip(names, best_key, strict=True))
        notes.append(
            f"Lowest validation loss here: {best} "
            f"({_loss(best_finished['best_val_loss'].mean())}); {len(groups)} combination(s) "
            f"trained, {len(failed_trials(stored))} trial(s) could not be built or trained "
            "(listed below)."
        )
    if stored.name == "architecture":
        notes.append(paper.ARCHITECTURE_FINDING)
    return Table(
        name="",
        title=f"{stored.name.capitalize()}: each combination of settings (mean ± std over "
        "finished trials)",
        columns=columns,
        rows=rows,
        frame=pd.DataFrame(records),
        notes=notes,
    )


def failed_trials(stored: StoredStudy) -> pd.DataFrame:
    return stored.trials[stored.trials["state"] == "FAIL"]


def failure_table(stored: StoredStudy) -> Table | None:
    """Trials that could not be built or trained, with the reason each recorded."""
    failed = failed_trials(stored)
    if not len(failed):
        return None
    names = setting_names(stored)
    columns_in = [space_column(stored, name) for name in names]
    rows, records = [], []
    for _, trial in failed.sort_values("number").iterrows():
        kind, _, reason = str(trial["fail_reason"]).partition(": ")
        if not reason:
            kind, reason = "failed", kind
        settings = [_display(n, trial[c]) for n, c in zip(names, columns_in, strict=True)]
        rows.append([str(int(trial["number"])), *settings, kind, reason])
        records.append(
            {
                "trial": int(trial["number"]),
                **dict(zip(names, settings, strict=True)),
                "kind": kind,
                "reason": reason,
            }
        )
    headers = [header(name) for name in names]
    return Table(
        name="failed",
        title="Trials that could not be built or trained, with their reason",
        columns=["Trial", *headers, "Kind", "Reason"],
        rows=rows,
        frame=pd.DataFrame(records),
        wrap={len(headers) + 2: 90},
    )


# --- every trial --------------------------------------------------------------------------------
def trials_table(stored: StoredStudy) -> Table:
    """One row per trial, in trial order."""
    names = stored.space
    columns_in = [space_column(stored, name) for name in names]
    shown = ["val_loss", "val_accuracy", "train_accuracy", "psnr", "ssim", "delta_e2000"]
    rows, records = [], []
    for _, trial in stored.trials.sort_values("number").iterrows():
        one = trial.to_frame().T
        cells = [show(*mean_std(one, METRIC[name])[:2], METRIC[name].fmt) for name in shown]
        stopped = trial["early_stopped_epoch"]
        rows.append(
            [
                str(int(trial["number"])),
                *(_display(name, trial[col]) for name, col in zip(names, columns_in, strict=True)),
                trial["state"].lower(),
                *cells,
                "–" if pd.isna(trial["epochs_run"]) else str(int(trial["epochs_run"])),
                "–" if pd.isna(trial["best_epoch"]) else str(int(trial["best_epoch"])),
                "–" if pd.isna(stopped) else str(int(stopped)),
                "–" if pd.isna(trial["seconds"]) else f"{trial['seconds']:.0f}",
            ]
        )
        records.append(
            {
                "trial": int(trial["number"]),
                **{name: trial[col] for name, col in zip(names, columns_in, strict=True)},
                "epochs_budget": trial.get("epochs"),
                "state": trial["state"],
                **{
                    m.name: values(one, m)[0] if len(values(one, m)) else math.nan for m in METRICS
                },
                "best_epoch": trial["best_epoch"],
                "last_val_loss": trial["last_val_loss"],
                "early_stopped": trial["early_stopped"],
                "early_stopped_epoch": stopped,
                "seconds": trial["seconds"],
                "fail_reason": trial["fail_reason"],
                "mlflow_run_id": trial["run_id"],
            }
        )
    headers = [header(name) for name in names]
    return Table(
        name="trials",
        title="Every trial",
        columns=[
            "Trial",
            *headers,
            "State",
            *(METRIC[n].header for n in shown),
            "Epochs run",
            "Best epoch",
            "Early stop at",
            "Seconds",
        ],
        rows=rows,
        frame=pd.DataFrame(records),
    )


def comparison_tables(stored: StoredStudy) -> list[Table]:
    """The study's own comparison table(s), chosen by what its space varies."""
    names = setting_names(stored)
    if names == ["optimizer"]:
        tables = [optimizer_table(stored)]
        tables.append(paper_table(stored, tables[0].frame))
    elif names == ["epochs"]:
        tables = [epoch_table(stored)]
    else:
        tables = [settings_table(stored)]
    failures = failure_table(stored)
    if failures is not None:
        tables.append(failures)
    return tables


@dataclass
class Grouping:
    """How figures group trials: a legend title, a label per trial (indexed by trial number)
    and the labels in display order."""

    title: str
    labels: pd.Series
    order: list[str]


def trial_groups(stored: StoredStudy) -> Grouping:
    """Trials grouped as the study's comparison table groups them (seeds together); labels are
    indexed by trial number."""
    trials = stored.trials.set_index("number", drop=False)
    names = setting_names(stored)
    if names == ["optimizer"]:
        keys = trials[space_column(stored, "optimizer")].map(_optimizer_key)
        labels = keys.map(paper.optimizer_name)
        known = [paper.optimizer_name(k) for k in paper.OPTIMIZER_FINDINGS]
        order = [n for n in known if n in set(labels)] + sorted(set(labels) - set(known))
        return Grouping("optimizer", labels, order)
    if names == ["epochs"]:
        budget = trials[space_column(stored, "epochs")]
        labels = pd.Series(
            [
                f"{_label(b)} (trained {_label(t)})"
                for b, t in zip(budget, trials["epochs"], strict=True)
            ],
            index=trials.index,
        )
        order = [lab for _, lab in sorted(set(zip(budget.map(float), labels, strict=True)))]
        return Grouping("budget (epochs trained)", labels, order)
    columns = [space_column(stored, name) for name in names]
    labels = trials[columns].apply(
        lambda row: " / ".join(_display(n, v) for n, v in zip(names, row, strict=True)), axis=1
    )
    loss = trials.assign(_label=labels).groupby("_label")["best_val_loss"].mean()
    order = list(loss.sort_values(na_position="last").index)
    return Grouping(" / ".join(header(n).lower() for n in names), labels, order)
