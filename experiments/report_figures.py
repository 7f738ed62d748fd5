"""Pages of the PDF report, drawn with matplotlib: tables as real text (so `pdftotext` reads them),
learning curves, Optuna's optimization history and parameter importances, and the best trials'
sample photos. Every function draws onto a `PdfPages` and returns how many pages it added.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from experiments.report_tables import Grouping, Table  # noqa: E402

PAGE = (11.69, 8.27)  # A4 landscape, inches
MARGIN = 0.45  # inches on every side
TITLE_SPACE = 0.75  # inches from the top edge to the first table row
MAX_FONT = 10.0
MIN_FONT = 6.0
NOTE_FONT = 9.5
CHAR_WIDTH = 0.56  # average glyph width of DejaVu Sans, in ems
LINE = 1.4  # line height, in ems
MIN_IMPORTANCE_TRIALS = 4  # fANOVA on fewer finished trials says nothing
MAX_SAMPLES_PER_PAGE = 4  # more than this: three a page
MAX_SAMPLE_GROUPS = 6

RC = {
    "pdf.fonttype": 42,  # TrueType: text stays text that pdftotext extracts
    "font.family": "DejaVu Sans",
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
}


def _heading(figure, title: str, subtitle: str = "") -> None:
    top = 1 - MARGIN / PAGE[1]
    figure.text(MARGIN / PAGE[0], top, title, fontsize=14, weight="bold", va="top")
    if subtitle:
        figure.text(
            MARGIN / PAGE[0], top - 0.3 / PAGE[1], subtitle, fontsize=9, va="top", color="0.3"
        )


def _footer(figure, text: str) -> None:
    figure.text(1 - MARGIN / PAGE[0], 0.25 / PAGE[1], text, fontsize=7, ha="right", color="0.4")


def wrap(text: str, width_in: float, size: float = NOTE_FONT) -> list[str]:
    """Lines of `text` that fit `width_in` inches at font size `size`."""
    chars = max(20, int(width_in * 72 / (size * CHAR_WIDTH)))
    return textwrap.wrap(text, chars) or [""]


def _cell_lines(table: Table) -> tuple[list[list[str]], list[list[str]]]:
    """Headers and cells split into lines (long text wrapped as the table asks)."""
    headers = [textwrap.wrap(h, 14) or [""] for h in table.columns]
    rows = []
    for row in table.rows:
        cells = []
        for index, cell in enumerate(row):
            width = table.wrap.get(index)
            cells.append(textwrap.wrap(cell, width) if width and cell else str(cell).split("\n"))
        rows.append(cells)
    return headers, rows


def _layout(table: Table, width_in: float, fill: bool = False):
    """The largest font size (MIN_FONT..MAX_FONT) at which the table fits `width_in` inches, its
    column widths, and its header and row lines. `fill`: stretch the last column to the width."""
    headers, rows = _cell_lines(table)
    chars = [
        max(len(line) for cell in [headers[c], *(r[c] for r in rows)] for line in cell)
        for c in range(len(table.columns))
    ]
    size = MAX_FONT
    while True:
        widths = [n * size * CHAR_WIDTH / 72 + 0.18 for n in chars]
        if sum(widths) <= width_in or size <= MIN_FONT:
            break
        size -= 0.25
    widths = [w * min(1.0, width_in / sum(widths)) for w in widths]
    if fill:
        widths[-1] += width_in - sum(widths)
    return size, widths, headers, rows


def _row_height(lines: int, size: float) -> float:
    return lines * size * LINE / 72 + 0.09


def _draw_table(axis, table, size, widths, rows, top: float, header: bool = True) -> float:
    """Draw `rows` (lists of cell lines; the first is the header when `header`) as rectangles
    and text with their top at `top` inches from the page bottom; returns where they end."""
    left_aligned = {c for c, w in table.wrap.items() if w >= 20}
    y = top
    for row_number, cells in enumerate(rows):
        is_header = header and row_number == 0
        height = _row_height(max(len(c) for c in cells), size)
        y -= height
        x = MARGIN
        fill = "0.88" if is_header else ("white" if row_number % 2 else "0.96")
        for column, (lines, width) in enumerate(zip(cells, widths, strict=True)):
            axis.add_patch(
                Rectangle((x, y), width, height, facecolor=fill, edgecolor="0.65", lw=0.5)
            )
            left = column in left_aligned and not is_header
            axis.text(
                x + 0.07 if left else x + width / 2,
                y + height / 2,
                "\n".join(lines),
                ha="left" if left else "center",
                va="center",
                fontsize=size,
                weight="bold" if is_header else "normal",
                linespacing=1.2,
            )
            x += width
    return y


class Document:
    """Text pages that flow: headings, tables (continued over pages as needed) and paragraphs,
    each starting a new page only when the current one is full."""

    def __init__(self, pdf: PdfPages, footer: str):
        self.pdf, self.footer = pdf, footer
        self.figure = self.axis = None
        self.y = 0.0
        self.pages = 0
        self.width = PAGE[0] - 2 * MARGIN

    def new_page(self, title: str, subtitle: str = "") -> None:
        self.finish()
        self.figure = plt.figure(figsize=PAGE)
        self.axis = self.figure.add_axes((0, 0, 1, 1))
        self.axis.set_axis_off()
        self.axis.set_xlim(0, PAGE[0])
        self.axis.set_ylim(0, PAGE[1])
        _heading(self.figure, title, subtitle)
        self.y = PAGE[1] - TITLE_SPACE - (0.25 if subtitle else 0)

    def finish(self) -> None:
        """Close the current page (figure pages drawn elsewhere come after it)."""
        if self.figure is None:
            return
        _footer(self.figure, self.footer)
        self.pdf.savefig(self.figure)
        plt.close(self.figure)
        self.figure = self.axis = None
        self.pages += 1

    def room(self) -> float:
        return self.y - (MARGIN + 0.2) if self.figure is not None else 0.0  # 0.2: footer

    def heading(self, text: str, title: str) -> None:
        """A bold subheading; on a new page titled `title` when less than an inch is left."""
        if self.room() < 1.0:
            self.new_page(title)
        self.axis.text(MARGIN, self.y, text, fontsize=11, weight="bold", va="top")
        self.y -= 0.3

    def paragraphs(self, texts: Sequence[str], title: str, size: float = NOTE_FONT) -> None:
        for text in texts:
            lines = wrap(text, self.width, size)
            height = len(lines) * size * 1.4 / 72
            if self.room() < height:
                self.new_page(title + " (continued)")
            self.axis.text(
                MARGIN, self.y, "\n".join(lines), fontsize=size, va="top", linespacing=1.25
            )
            self.y -= height + 0.1

    def table(self, table: Table, new_page: bool = True, fill: bool = False) -> None:
        """Draw `table` with its title and notes, starting a page when asked or when fewer than
        three rows fit."""
        size, widths, headers, rows = _layout(table, self.width, fill)
        heights = [_row_height(max(len(c) for c in row), size) for row in rows]
        header_h = _row_height(max(len(h) for h in headers), size)
        first = header_h + sum(heights[:3])
        if new_page or self.room() < first + 0.4:
            self.new_page(table.title)
        elif table.title:
            self.y -= 0.1
            self.heading(table.title, table.title)
        start = 0
        while start < len(rows):
            end, used = start, header_h
            while end < len(rows) and used + heights[end] <= self.room():
                used += heights[end]
                end += 1
            if end == start:
                self.new_page(f"{table.title} (continued)")
                continue
            self.y = (
                _draw_table(self.axis, table, size, widths, [headers, *rows[start:end]], self.y)
                - 0.2
            )
            start = end
            if start < len(rows):
                self.new_page(f"{table.title} (continued)")
        self.paragraphs(table.notes, table.title)


def _colors(count: int) -> list:
    cmap = plt.get_cmap("tab10" if count <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(count)]


def curves_page(
    pdf: PdfPages,
    histories: dict,
    numbers: Sequence[int],
    grouping: Grouping,
    title: str,
    footer: str,
) -> int:
    """Validation loss (with training loss dotted) and validation accuracy per epoch, one line
    per trial, coloured by group."""
    figure, (loss_axis, acc_axis) = plt.subplots(1, 2, figsize=PAGE)
    figure.subplots_adjust(left=0.07, right=0.98, top=0.83, bottom=0.1, wspace=0.2)
    _heading(
        figure,
        title,
        "one line per trial; dots mark the epoch of lowest validation loss (the weights kept); "
        "dotted: training loss",
    )
    drawn = [n for n in numbers if n in histories and not histories[n]["val_loss"].dropna().empty]
    present = [label for label in grouping.order if label in set(grouping.labels[drawn])]
    colors = dict(zip(present, _colors(len(present)), strict=True))
    shown, lows = set(), []
    for number in numbers:
        history = histories.get(number)
        if history is None or history["val_loss"].dropna().empty:
            continue
        label = grouping.labels[number]
        color = colors[label]
        legend = None if label in shown else label
        shown.add(label)
        val = history["val_loss"].dropna()
        loss_axis.plot(val.index, val.values, "-", color=color, marker="o", ms=2.5, label=legend)
        train = history["loss"].dropna()
        loss_axis.plot(train.index, train.values, ":", color=color, lw=1)
        best = val.idxmin()
        loss_axis.plot([best], [val[best]], "o", color=color, ms=7, mec="black")
        lows.append(val.min())
        accuracy = history["val_accuracy"].dropna() * 100
        acc_axis.plot(accuracy.index, accuracy.values, "-", color=color, marker="o", ms=2.5)
        if best in accuracy.index:
            acc_axis.plot([best], [accuracy[best]], "o", color=color, ms=7, mec="black")
    values = [v for h in histories.values() for v in h["val_loss"].dropna()]
    if values and min(values) > 0 and max(values) / min(values) > 20:
        loss_axis.set_yscale("log")
    loss_axis.set(xlabel="epoch", ylabel="loss (MSE on a/b / 128)", title="validation loss")
    acc_axis.set(
        xlabel="epoch", ylabel="accuracy % (Keras categorical)", title="validation accuracy"
    )
    for axis in (loss_axis, acc_axis):
        axis.grid(alpha=0.3)
        axis.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = loss_axis.get_legend_handles_labels()
    ordered = sorted(zip(labels, handles, strict=True), key=lambda p: grouping.order.index(p[0]))
    if ordered:
        loss_axis.legend(
            [h for _, h in ordered], [lab for lab, _ in ordered], title=grouping.title, fontsize=8
        )
    _footer(figure, footer)
    pdf.savefig(figure)
    plt.close(figure)
    return 1


def _varying_params(study) -> list[str]:
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    names = {name for t in complete for name in t.params}
    return sorted(n for n in names if len({repr(t.params.get(n)) for t in complete}) > 1)


def optuna_pages(
    pdf: PdfPages, study, footer: str, objective: str = "objective"
) -> tuple[int, list[str]]:
    """Optuna's optimization history and, where at least two parameters vary over enough
    finished trials, its parameter importances. Returns pages added and notes on what was
    left out."""
    import optuna
    from optuna.visualization import matplotlib as optuna_plots

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    notes, pages = [], 0
    if not complete:
        return 0, ["Optuna figures left out: the Optuna study has no finished trial."]
    varying = _varying_params(study)
    plots = [
        (
            "Optuna: optimization history",
            "the objective of each finished trial in trial order, and the best so far",
            lambda: optuna_plots.plot_optimization_history(study),
        )
    ]
    if len(varying) >= 2 and len(complete) >= MIN_IMPORTANCE_TRIALS:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        plots.append(
            (
                "Optuna: parameter importances",
                f"fANOVA importance of {', '.join(varying)} for the objective, over "
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
    for title, subtitle, draw in plots:
        try:
            with plt.style.context("default"):  # optuna switches to ggplot; keep it local
                axis = draw()
        except Exception as error:  # too few trials for the evaluator and the like
            notes.append(f"{title} left out: {str(error).splitlines()[0][:160]}")
            continue
        figure = axis.figure
        figure.set_layout_engine("none")  # optuna asks for tight_layout; the heading needs room
        figure.set_size_inches(*PAGE)
        importances = "importances" in title
        figure.subplots_adjust(
            left=0.2 if importances else 0.08,
            right=0.92 if importances else 0.8,
            top=0.84,
            bottom=0.14,
        )
        for loc in ("left", "center", "right"):
            axis.set_title("", loc=loc)
        if "history" in title:
            axis.set_ylabel(objective)
            axis.xaxis.get_major_locator().set_params(integer=True)
        _heading(figure, title, subtitle)
        if pages == 0 and notes:  # what was left out, said where it would have been
            figure.text(
                MARGIN / PAGE[0], 0.55 / PAGE[1], "\n".join(notes), fontsize=9, va="bottom"
            )
        _footer(figure, footer)
        pdf.savefig(figure)
        plt.close(figure)
        pages += 1
    return pages, notes


def samples_pages(
    pdf: PdfPages, samples: Sequence[tuple[str, Path | None]], title: str, footer: str
) -> int:
    """The stored `samples.png` of each group's best trial, side by side."""
    if not samples:
        return 0
    pages = 0
    per_page = len(samples) if len(samples) <= MAX_SAMPLES_PER_PAGE else 3
    for start in range(0, len(samples), per_page):
        chunk = samples[start : start + per_page]
        figure, axes = plt.subplots(1, per_page, figsize=PAGE, squeeze=False)
        figure.subplots_adjust(left=0.03, right=0.97, top=0.84, bottom=0.08, wspace=0.06)
        more = f" ({start // per_page + 1} of {math.ceil(len(samples) / per_page)})"
        _heading(
            figure,
            title + (more if len(samples) > per_page else ""),
            "the same validation photos for each: gray input | predicted (ours) | truth",
        )
        for axis in axes[0]:
            axis.set_axis_off()
        for axis, (caption, path) in zip(axes[0], chunk, strict=False):
            axis.set_title(caption, fontsize=9)
            if path is None:
                axis.text(
                    0.5,
                    0.5,
                    "samples.png not found in the store",
                    ha="center",
                    transform=axis.transAxes,
                )
                continue
            axis.imshow(np.asarray(plt.imread(path)))
        _footer(figure, footer)
        pdf.savefig(figure)
        plt.close(figure)
        pages += 1
    return pages
