"""The report's figures, drawn with matplotlib into PNG files that the PDF lays out: learning
curves per trial, a Pareto front, and Optuna's optimization history and parameter importances."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from experiments.report.verdicts import Grouping  # noqa: E402

SIZE = (11.0, 5.2)  # inches: the width of an A4 landscape page's text, half its height
DPI = 130
MIN_IMPORTANCE_TRIALS = 4  # fANOVA on fewer finished trials says nothing


def _save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def _colors(count: int) -> list:
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(count)]


def curves(
    path: Path,
    histories: dict,
    numbers: Sequence[int],
    grouping: Grouping,
    loss_labels: dict[int, str],
) -> Path:
    """Validation loss (training loss dotted) and validation accuracy per epoch, one line per
    trial, coloured by group; a large dot marks the epoch of lowest validation loss.

    `loss_labels`: what each trial's loss measures (its head's `loss_label`). Trials whose losses
    measure different things get a loss panel each, so no two scales share an axis."""
    drawn = [n for n in numbers if n in histories and not histories[n]["val_loss"].dropna().empty]
    kinds = list(dict.fromkeys(loss_labels[n] for n in drawn)) or [""]
    figure, axes = plt.subplots(
        1, len(kinds) + 1, figsize=(SIZE[0] * (len(kinds) + 1) / 2, SIZE[1])
    )
    loss_axes, acc_axis = dict(zip(kinds, axes[:-1], strict=True)), axes[-1]
    present = [name for name in grouping.order if name in set(grouping.labels[drawn])]
    colors = dict(zip(present, _colors(len(present)), strict=True))
    shown = set()
    for number in drawn:
        history, name = histories[number], grouping.labels[number]
        color = colors[name]
        val = history["val_loss"].dropna()
        legend = None if name in shown else name
        shown.add(name)
        loss_axis = loss_axes[loss_labels[number]]
        loss_axis.plot(val.index, val.values, "-", color=color, marker="o", ms=2.5, label=legend)
        train = history["loss"].dropna()
        loss_axis.plot(train.index, train.values, ":", color=color, lw=1)
        best = val.idxmin()
        loss_axis.plot([best], [val[best]], "o", color=color, ms=7, mec="black")
        accuracy = history["val_accuracy"].dropna() * 100
        acc_axis.plot(accuracy.index, accuracy.values, "-", color=color, marker="o", ms=2.5)
        if best in accuracy.index:
            acc_axis.plot([best], [accuracy[best]], "o", color=color, ms=7, mec="black")
    for kind, loss_axis in loss_axes.items():
        values = [v for n in drawn if loss_labels[n] == kind for v in histories[n]["val_loss"]]
        values = [v for v in values if v == v]  # NaN-free
        if values and min(values) > 0 and max(values) / min(values) > 20:
            loss_axis.set_yscale("log")
        title = "validation loss" if len(kinds) == 1 else f"validation loss: {kind}"
        loss_axis.set(xlabel="epoch", ylabel=f"loss ({kind})" if kind else "loss", title=title)
    acc_axis.set(xlabel="epoch", ylabel="accuracy %", title="validation accuracy")
    for axis in axes:
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = [], []
    for loss_axis in loss_axes.values():
        more_handles, more_labels = loss_axis.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    loss_axis = axes[0]
    ordered = sorted(zip(labels, handles, strict=True), key=lambda p: grouping.order.index(p[0]))
    if ordered:
        loss_axis.legend([h for _, h in ordered], [n for n, _ in ordered], title=grouping.title)
    figure.tight_layout()
    return _save(figure, path)


def _varying_params(study) -> list[str]:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    names = {name for t in complete for name in t.params}
    return sorted(n for n in names if len({repr(t.params.get(n)) for t in complete}) > 1)


def optuna_figures(
    folder: Path, study, objective: str
) -> tuple[list[tuple[str, str, Path]], list[str]]:
    """Optuna's optimization history and, where at least two parameters vary over enough
    finished trials, its parameter importances: (title, subtitle, PNG) each, and notes on
    what was left out and why. With several objectives the history shows the first (named in
    `objective`) and the importances every objective."""
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not complete:
        return [], ["Optuna figures left out: the Optuna study has no finished trial."]
    varying = _varying_params(study)
    several = len(study.directions) > 1
    first = {"target": lambda t: t.values[0], "target_name": objective} if several else {}
    plots = [
        (
            "Optuna: optimization history",
            "the first objective of each finished trial in trial order (several objectives "
            "have no single best so far)"
            if several
            else "the objective of each finished trial in trial order, and the best so far",
            lambda: optuna_plots.plot_optimization_history(study, **first),
        )
    ]
    notes = []
    if len(varying) >= 2 and len(complete) >= MIN_IMPORTANCE_TRIALS:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        plots.append(
            (
                "Optuna: parameter importances",
                f"fANOVA importance of {', '.join(varying)} for "
                f"{'each objective' if several else 'the objective'}, over "
                f"{len(complete)} finished trials",
                lambda: optuna_plots.plot_param_importances(study, evaluator=evaluator),
            )
        )
    else:
        notes.append(
            "Parameter importances left out: they need at least 2 parameters that vary over "
            f"at least {MIN_IMPORTANCE_TRIALS} finished trials; here {len(varying)} "
            f"parameter(s) vary over {len(complete)}."
        )
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    drawn = []
    for index, (title, subtitle, draw) in enumerate(plots):
        try:
            with plt.style.context("default"):  # optuna switches to ggplot; keep it local
                axis = draw()
        except Exception as error:  # too few trials for the evaluator and the like
            notes.append(f"{title} left out: {str(error).splitlines()[0][:160]}")
            continue
        figure = axis.figure
        figure.set_size_inches(*SIZE)
        for loc in ("left", "center", "right"):
            axis.set_title("", loc=loc)
        if "history" in title:
            axis.set_ylabel(objective)
            axis.xaxis.get_major_locator().set_params(integer=True)
        drawn.append((title, subtitle, _save(figure, folder / f"optuna-{index}.png")))
    return drawn, notes


def pareto_plot(
    path: Path,
    points: dict[int, tuple[float, float]],
    front: Sequence[int],
    axes: tuple[str, str],
) -> Path:
    """Every finished trial on two objectives (gray), the Pareto-optimal ones highlighted,
    joined in the front's order and labelled with their rank and trial number."""
    figure, axis = plt.subplots(figsize=SIZE)
    others = [n for n in points if n not in set(front)]
    if others:
        axis.scatter(
            [points[n][0] for n in others],
            [points[n][1] for n in others],
            s=28, color="0.6", label="dominated", zorder=2,
        )  # fmt: skip
    xs, ys = [points[n][0] for n in front], [points[n][1] for n in front]
    axis.plot(xs, ys, "-", color="tab:red", lw=1.5, zorder=3)
    axis.scatter(
        xs, ys, s=60, color="tab:red", edgecolor="black", label="Pareto-optimal", zorder=4
    )
    for rank, (number, x, y) in enumerate(zip(front, xs, ys, strict=True), start=1):
        axis.annotate(
            f"pareto-{rank} (trial {number})", (x, y), xytext=(6, 6),
            textcoords="offset points", fontsize=8,
        )  # fmt: skip
    axis.set(xlabel=axes[0], ylabel=axes[1])
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return _save(figure, path)


def race_intervals(path: Path, race: dict) -> Path:
    """A raced study's comparisons round by round: each look's difference with its repeated
    95 % interval (kept at 95 % over all looks), narrowing as seeds are added; a filled dot
    marks the look that decided the comparison (its verdict stands from there)."""
    names = list(dict.fromkeys(c["comparison"] for look in race["looks"] for c in look))
    figure, axes = plt.subplots(1, max(1, len(names)), figsize=SIZE, squeeze=False)
    for axis, name in zip(axes[0], names, strict=False):
        entries = [
            (index, c) for index, look in enumerate(race["looks"]) for c in look
            if c["comparison"] == name and c["difference"] is not None
        ]  # fmt: skip
        decided_at = next((i for i, c in entries if c["decided"]), None)
        for index, entry in entries:
            if decided_at is not None and index > decided_at:
                break  # the verdict stands from the look that decided it
            low, high = entry["low"], entry["high"]
            color = "tab:green" if entry["decided"] else "tab:blue"
            if low is not None and high is not None:
                axis.plot([index, index], [low, high], "-", color=color, lw=2.5)
            axis.plot([index], [entry["difference"]], "o", color=color,
                      mfc=color if entry["decided"] else "white", ms=7)  # fmt: skip
        axis.axhline(0.0, color="black", lw=0.8)
        metric = entries[0][1]["metric"] if entries else ""
        pair = f"{entries[-1][1]['a']} minus {entries[-1][1]['b']}" if entries else ""
        axis.set(xlabel="round (0: the starting seeds)", ylabel=f"difference in {metric}",
                 title=f"{name}\n{pair}")  # fmt: skip
        axis.xaxis.get_major_locator().set_params(integer=True)
    figure.suptitle(
        f"{race['method']}; up to {race['max_seeds']} seeds a group", fontsize=9, y=1.04
    )
    return _save(figure, path)
