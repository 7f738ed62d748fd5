"""Build one study's report: the comparison of its kind, the scores against gray, every trial,
the figures; written as a PDF and the same tables as CSV."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from colorize.metrics import EVALUATE_METRICS, METRIC
from experiments.common import records as r
from experiments.report import figures, paper
from experiments.report.comparisons import comparison_for
from experiments.report.comparisons.settings import best_trial, failure_table
from experiments.report.humantest import HEADING, human_section
from experiments.report.overview import READING, description, overview_items
from experiments.report.pdf import ReportPdf
from experiments.report.stored_study import StoredStudy, download_artifact
from experiments.report.tables import Row, Table, space_column, trials_table

MAX_SAMPLE_GROUPS = 6
MAX_STRIP_GROUPS = 4  # columns of the side-by-side figure between gray and truth
SAMPLES_PER_PAGE = 3


@dataclass
class Report:
    """What a build wrote: files (the PDF first), its page count, and its verdict sentences."""

    files: list[Path]
    pages: int
    verdicts: list[str]


def gray_table(stored: StoredStudy, scratch: Path) -> tuple[Table | None, str]:
    """The best model's scores against the gray baseline on the study's colour test photos, as
    the study stored them, with its verdict sentence."""
    path = download_artifact(stored, stored.parent["run_id"], r.GRAY_ARTIFACT, scratch)
    if path is None:
        return None, ""
    scores = json.loads(path.read_text())
    shown = [key for key in EVALUATE_METRICS if key in scores["mean"]["model"]]
    best = "best model"
    if stored.is_multi:  # no single best: the champion of the front stands for the study
        best = f"champion (the Pareto-optimal trial best by {stored.objectives[0][0]})"

    def row(item: dict) -> Row:
        model, gray = item["model"], item["gray"]
        beats = {True: "yes", False: "no", None: ""}[item["beats_gray"]]
        cells = [f"{METRIC[k].fmt(model[k])} / {METRIC[k].fmt(gray[k])}" for k in shown]
        return [item["photo"], *cells, beats], {
            "photo": item["photo"], **{f"model_{k}": v for k, v in model.items()},
            **{f"gray_{k}": v for k, v in gray.items()}, "beats_gray": item["beats_gray"],
        }  # fmt: skip

    items = [*scores["photos"], {"photo": "mean", **scores["mean"], "beats_gray": None}]
    table = Table.of_rows(
        map(row, items),
        name="gray",
        title=f"Against gray: the {best} on {scores.get('source', 'the test photos')}",
        columns=[
            "Photo",
            *(METRIC[k].label + (" model / gray" if i == 0 else "") for i, k in enumerate(shown)),
            "Beats gray",
        ],
        notes=[
            f"Each photo colorized from its L by the study's {best} (trial "
            f"{scores.get('trial', '?')}), beside gray: its L with a = b = 0. A photo beats "
            "gray when its mean CIEDE2000 is lower.",
            f"Verdict: {scores['summary']}.",
        ],
        wide={0},
    )
    return table, f"Against gray: {scores['summary']}."


def _group_bests(stored: StoredStudy, grouping) -> list[tuple[str, pd.Series]]:
    """(group, its best finished trial) for each group in display order."""
    complete = stored.complete_trials()
    found = []
    for name in grouping.order:
        members = complete[(grouping.labels[complete["number"]] == name).to_numpy()]
        if len(members):
            found.append((name, best_trial(stored, members)))
    return found


def _best_per_group(stored: StoredStudy, grouping) -> list[tuple[str, str]]:
    """(caption, run id) of the best trial of each group, best groups first."""
    metric = stored.params.get("metric", "val_loss")
    column, spec = r.objective_column(metric), METRIC.get(metric)
    found = []
    for name, trial in _group_bests(stored, grouping)[:MAX_SAMPLE_GROUPS]:
        value = trial.get(column)
        shown = spec.fmt(value * spec.scale) if spec and pd.notna(value) else "–"
        caption = (
            f"{name}: trial {int(trial['number'])}\n{spec.label if spec else metric} {shown}, "
            f"val. acc. {100 * trial['best_val_accuracy']:.2f}%"
        )
        found.append((caption, trial["run_id"]))
    return found


def _samples(
    stored: StoredStudy, comparison, grouping, scratch: Path
) -> tuple[str, list[tuple[str, Path | None]]]:
    """The sample-strip page's title and (caption, samples.png) of each trial it shows: the
    comparison's own choice, else the best trial of each group."""
    if hasattr(comparison, "samples"):
        title, picks = comparison.samples(stored)
    else:
        title, picks = f"Best trial per {grouping.title}", _best_per_group(stored, grouping)
    return title, [
        (caption, download_artifact(stored, run_id, r.SAMPLES_ARTIFACT, scratch / f"samples-{i}"))
        for i, (caption, run_id) in enumerate(picks)
    ]


def side_by_side(stored: StoredStudy, grouping, scratch: Path) -> Path | None:
    """One figure of the same validation photos: gray | each group's best trial | truth, from
    the trials' sample arrays; None with fewer than two groups or where a trial has none."""
    import numpy as np

    from experiments.trials.trial_figures import close, strip_figure

    columns = []
    for name, trial in _group_bests(stored, grouping)[:MAX_STRIP_GROUPS]:
        folder = scratch / f"arrays-{int(trial['number'])}"
        path = download_artifact(stored, trial["run_id"], r.SAMPLE_ARRAYS_ARTIFACT, folder)
        if path is None:
            return None
        columns.append((name, np.load(path)))
    if len(columns) < 2:
        return None
    first = columns[0][1]
    strip = [
        ("gray", first["gray"]),
        *((name, arrays["predicted"]) for name, arrays in columns),
        ("truth", first["truth"]),
    ]
    figure = strip_figure(strip, "")
    path = scratch / "side_by_side.png"
    figure.savefig(path, dpi=110, bbox_inches="tight")
    close(figure)
    return path


def _human_pages(pdf: ReportPdf, human) -> None:
    """The "Can people tell?" section: the paper's human test beside ours."""
    pdf.add_page()
    pdf.heading(HEADING)
    pdf.paragraphs(human.paragraphs)
    pdf.paragraphs(human.verdicts)
    for table in human.tables:
        pdf.add_table(table)
    pdf.figure(
        f"{HEADING} The pairs people judged",
        "gray input | each model's colorization | the original, as shown (cut and sized alike)",
        human.picture,
    )


def _write_pdf(stored, path: Path, tables, gray, every, scratch: Path, verdicts, human) -> int:
    comparison = comparison_for(stored)
    grouping = comparison.grouping(stored)
    footer = (
        f"colorize-studies report: study {stored.name}, engine {stored.engine}, profile "
        f"{stored.params.get('profile', '?')}; {stored.completeness()}"
    )
    title = f"Study report: {stored.name}" + (" (partial)" if stored.is_partial else "")
    pdf = ReportPdf(footer, title)
    pdf.title_page(title)
    items = overview_items(stored, description(stored, scratch))
    pdf.add_table(
        Table("", "What was run", ["What", "Value"], [list(i) for i in items], None, wide={1})
    )
    if stored.notes:
        pdf.heading("Notes")
        pdf.paragraphs(stored.notes)
    pdf.heading("The paper's findings")
    pdf.paragraphs(paper.summary_lines())
    if verdicts:
        pdf.heading(getattr(comparison, "VERDICTS_HEADING", "Verdicts on the paper's findings"))
        pdf.paragraphs(verdicts)
    pdf.heading("Reading this report")
    pdf.paragraphs(READING)
    for table in [*tables, *([gray] if gray else [])]:
        pdf.add_page()
        pdf.add_table(table)
    if human is not None:
        _human_pages(pdf, human)
    if hasattr(comparison, "figures_of"):
        for figure_title, subtitle, png in comparison.figures_of(stored, scratch):
            pdf.figure(figure_title, subtitle, png)
    curves = figures.curves(
        scratch / "curves.png",
        stored.histories,
        list(stored.trials["number"]),
        grouping,
        loss_labels(stored),
    )
    pdf.figure(
        f"Learning curves per {grouping.title}",
        "one line per trial; dots mark the epoch of lowest validation loss (the weights kept); "
        "dotted: training loss",
        curves,
    )
    optuna_notes = []
    if stored.optuna_study is not None:
        first = stored.objectives[0][0]
        objective = f"first objective: {first}" if stored.is_multi else f"objective: {first}"
        drawn, optuna_notes = figures.optuna_figures(scratch, stored.optuna_study, objective)
        for index, (figure_title, subtitle, png) in enumerate(drawn):
            pdf.figure(figure_title, subtitle, png, " ".join(optuna_notes) if index == 0 else "")
        if drawn:
            optuna_notes = []
    strip = None if hasattr(comparison, "samples") else side_by_side(stored, grouping, scratch)
    if strip is not None:
        names = " | ".join(name for name, _ in _group_bests(stored, grouping)[:MAX_STRIP_GROUPS])
        pdf.figure(
            f"Side by side: gray | {names} | truth",
            f"the same validation photos colorized by the best trial of each {grouping.title}",
            strip,
        )
    samples_title, samples = _samples(stored, comparison, grouping, scratch)
    for start in range(0, len(samples), SAMPLES_PER_PAGE):
        pdf.images_row(
            samples_title,
            "the same validation photos for each: gray input | predicted (ours) | truth",
            samples[start : start + SAMPLES_PER_PAGE],
        )
    every.notes = optuna_notes
    pdf.add_page()
    pdf.add_table(every)
    pdf.output(str(path))
    return pdf.pages_count


def build_report(stored: StoredStudy, reports_dir: Path) -> Report:
    """Write the PDF and CSV files of one stored study."""
    comparison = comparison_for(stored)
    tables = comparison.tables(stored)
    failures = failure_table(stored)
    if failures is not None and not any(t.name == "failed" for t in tables):
        tables.append(failures)
    verdicts = [v.sentence() for v in comparison.verdicts(stored)]
    reports_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        gray, gray_sentence = gray_table(stored, scratch / "gray")
        human = human_section(stored, scratch)
        every = trials_table(stored)
        written: list[Path] = []
        human_tables = human.tables if human is not None else []
        for table in [*tables, *([gray] if gray else []), *human_tables, every]:
            suffix = f"-{table.name}" if table.name else ""
            path = reports_dir / f"{stored.name}{suffix}.csv"
            table.frame.to_csv(path, index=False)
            written.append(path)
        for stale in (
            "failed",
            "gray",
            "human",
            "human-photos",
        ):  # tables an earlier build had and this one has not
            path = reports_dir / f"{stored.name}-{stale}.csv"
            if path.exists() and path not in written:
                path.unlink()
        pdf_path = reports_dir / f"{stored.name}.pdf"
        draft = reports_dir / f".{stored.name}.pdf.part"  # a failed build leaves the old PDF
        try:
            pages = _write_pdf(stored, draft, tables, gray, every, scratch, verdicts, human)
            os.replace(draft, pdf_path)
        finally:
            draft.unlink(missing_ok=True)
    sentences = verdicts + ([gray_sentence] if gray_sentence else [])
    sentences += [f"{HEADING} {sentence}" for sentence in (human.verdicts if human else [])]
    return Report([pdf_path, *written], pages, sentences)


def loss_labels(stored: StoredStudy) -> dict[int, str]:
    """What each trial's training loss measures, as its head's card labels it (the head from the
    trial's `loss` setting; a study stored before heads existed trained the default)."""
    from colorize.choices import DEFAULT_LOSS
    from colorize.head_cards import HEAD_CARDS

    column = space_column(stored, "loss")
    heads = stored.trials.get(column, pd.Series(DEFAULT_LOSS, index=stored.trials.index))
    names = [str(head) if isinstance(head, str) else DEFAULT_LOSS for head in heads]
    return {
        int(number): HEAD_CARDS[name].loss_label if name in HEAD_CARDS else f"{name} loss"
        for number, name in zip(stored.trials["number"], names, strict=True)
    }
