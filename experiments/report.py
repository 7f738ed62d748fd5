"""Build a study's comparison report (PDF plus CSV tables) from what its stores hold.

    python -m experiments.report study=optimizers                  # reads mlruns/, writes reports/
    python -m experiments.report study=optimizers,epochs runs_dir=/tmp/runs
    python -m experiments.report study=architecture tuner=keras_tuner reports_dir=out
    python -m experiments.report --help

For each study it writes `<reports_dir>/<study>.pdf` and, beside it, the same tables as CSV:
`<study>.csv` (the comparison table: one row per optimizer, epoch budget or setting combination),
`<study>-trials.csv` (every trial) and `<study>-failed.csv` (trials that could not be built or
trained, when there are any). It reads only the MLflow store and the Optuna storage that
`python -m experiments.run` wrote, so it can be rebuilt at any time, also while a study is still
running (the report then says "partial: N of M trials"). See docs/REPORT.md.
"""

from __future__ import annotations

import ast
import difflib
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from experiments.errors import USAGE_EXIT, UsageError

KEYS = {
    "study": "required; one study or several, comma-separated",
    "runs_dir": "folder experiments.run wrote to (default mlruns)",
    "tracking_uri": "MLflow URI (default sqlite:///<runs_dir>/mlflow.db)",
    "storage": "Optuna storage URL (default sqlite:///<runs_dir>/optuna.db)",
    "tuner": "which engine's runs: optuna (default) or keras_tuner",
    "reports_dir": "where the PDF and CSV files go (default reports)",
}


@dataclass
class ReportArgs:
    studies: list[str]
    runs_dir: str = "mlruns"
    tracking_uri: str | None = None
    storage: str | None = None
    tuner: str = "optuna"
    reports_dir: str = "reports"


def help_text() -> str:
    from experiments.config import available_studies

    lines = [
        "usage: python -m experiments.report study=NAME[,NAME...] [key=value ...]",
        "",
        "Builds <reports_dir>/<study>.pdf and its tables as CSV from the stored runs of a study",
        "(the MLflow store and Optuna storage that `python -m experiments.run` wrote).",
        "",
        "keys:",
        *(f"  {key:<13} {text}" for key, text in KEYS.items()),
        "",
        f"studies: {', '.join(available_studies())}",
        "",
        "examples:",
        "  python -m experiments.report study=optimizers runs_dir=/tmp/runs",
        "  python -m experiments.report study=optimizers,epochs,architecture",
    ]
    return "\n".join(lines)


def parse_args(args: list[str]) -> ReportArgs:
    """`key=value` arguments -> ReportArgs; raises UsageError naming a wrong key or value."""
    from experiments.config import TUNERS, RunConfig, available_studies

    values: dict[str, str] = {}
    for arg in args:
        if arg.startswith("-"):
            raise UsageError(f"unknown option {arg}; options: --help")
        if "=" not in arg:
            raise UsageError(f"expected key=value, got {arg!r} (see --help)")
        key, value = (part.strip() for part in arg.split("=", 1))
        if key not in KEYS:
            match = difflib.get_close_matches(key, list(KEYS), n=1)
            hint = f" (did you mean {match[0]}?)" if match else ""
            raise UsageError(f"unknown key {key!r}{hint}; allowed: {', '.join(KEYS)}")
        values[key] = value
    studies = [name.strip() for name in values.get("study", "").split(",") if name.strip()]
    known = available_studies()
    if not studies:
        raise UsageError(f"study= is required; one or more of: {', '.join(known)}")
    for name in studies:
        if name not in known:
            match = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {match[0]}?)" if match else ""
            raise UsageError(f"unknown study {name!r}{hint}; allowed: {', '.join(known)}")
    tuner = values.get("tuner", "optuna")
    if tuner not in TUNERS:
        raise UsageError(f"tuner={tuner} is not allowed; allowed: {', '.join(TUNERS)}")
    return ReportArgs(
        studies=list(dict.fromkeys(studies)),
        runs_dir=values.get("runs_dir") or RunConfig.runs_dir,
        tracking_uri=values.get("tracking_uri") or None,
        storage=values.get("storage") or None,
        tuner=tuner,
        reports_dir=values.get("reports_dir") or "reports",
    )


def _when(millis: int | None) -> str:
    if not millis:
        return "?"
    return datetime.fromtimestamp(millis / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _description(stored, scratch: Path) -> str:
    """The study's description from the study.yaml the run stored (the file may have changed)."""
    import yaml

    from experiments.report_store import download_artifact

    path = download_artifact(stored, stored.parent["run_id"], "study.yaml", scratch)
    try:
        raw = yaml.safe_load(path.read_text()) if path else {}
    except (OSError, yaml.YAMLError):
        raw = {}
    return " ".join(str((raw or {}).get("description", "")).split())


def _engine_part(text: str) -> str:
    """A stored sampler/pruner dict ("{'type': 'grid', 'seed': 0}") as "grid (seed 0)"."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    if not isinstance(value, dict) or "type" not in value:
        return text
    options = ", ".join(f"{k} {v}" for k, v in value.items() if k != "type")
    return f"{value['type']}" + (f" ({options})" if options else "")


def trial_counts(stored) -> str:
    parts = [
        f"{stored.count('COMPLETE')} finished",
        f"{stored.count('PRUNED')} pruned",
        f"{stored.count('FAIL')} failed",
    ]
    infeasible = stored.trials["fail_reason"].astype(str).str.startswith("InfeasibleArchitecture")
    if infeasible.any():
        parts[-1] += f" ({int(infeasible.sum())} could not be built)"
    if stored.count("RUNNING"):
        parts.append(f"{stored.count('RUNNING')} unfinished (running or killed)")
    if stored.retried:
        parts.append(f"{stored.retried} killed trial(s) rerun, counted once")
    return ", ".join(parts)


def fixed_settings(stored) -> str:
    """Trial settings every trial shared (the study's fixed values and the profile's)."""
    from experiments.report_store import SETTING_PARAMS

    trials, parts = stored.trials, []
    for name in SETTING_PARAMS:
        if name in trials and name not in stored.space:
            found = trials[name].dropna().astype(str).unique()
            if len(found) == 1:
                parts.append(f"{name} {found[0]}")
    return ", ".join(parts) or "–"


def overview_items(stored, description: str) -> list[tuple[str, str]]:
    """What was run, as (item, value) pairs for the first page."""
    params, tags = stored.params, stored.tags
    size = params.get("image_size", "?")
    skipped = [
        f"{params[k]} {k.removeprefix('skipped_')}"
        for k in ("skipped_grayscale", "skipped_unreadable")
        if params.get(k, "0") != "0"
    ]
    hardware = [tags.get("host.platform", "?"), f"Keras backend {tags.get('keras.backend', '?')}"]
    hardware += [
        f"{k.removeprefix('host.')} {v}"
        for k, v in sorted(tags.items())
        if k.startswith("host.") and k not in ("host.platform", "host.python")
    ]
    versions = [f"python {tags['host.python']}"] if "host.python" in tags else []
    versions += [
        f"{k.removeprefix('version.')} {v}"
        for k, v in sorted(tags.items())
        if k.startswith("version.")
    ]
    stores = f"MLflow {stored.tracking_uri}"
    if stored.storage_url:
        stores += f"; Optuna {stored.storage_url}"
    budgets = ""
    if "epochs" in stored.space and "epochs" in stored.trials:
        pairs = sorted(
            {
                (int(b), int(t))
                for b, t in zip(
                    stored.trials["space.epochs"], stored.trials["epochs"], strict=True
                )
            }
        )
        budgets = "; epoch budgets trained: " + ", ".join(f"{b} -> {t}" for b, t in pairs)
    return [
        ("Study", f"{stored.name}: {description}" if description else stored.name),
        (
            "Trials",
            f"{stored.completeness()}: {trial_counts(stored)}"
            + (
                "; the study has not finished, the tables cover the trials on record"
                if stored.is_partial
                else ""
            ),
        ),
        ("Profile", f"{params.get('profile', '?')}{budgets}"),
        (
            "Dataset",
            f"{params.get('dataset', '?')}: {params.get('dataset_photos', '?')} photos, "
            f"{params.get('train_images', '?')} training / {params.get('val_images', '?')} "
            f"validation images, image size {size}x{size}"
            + (f"; skipped {', '.join(skipped)}" if skipped else ""),
        ),
        (
            "Engine",
            f"{stored.engine}: sampler {_engine_part(params.get('sampler', '?'))}, pruner "
            f"{_engine_part(params.get('pruner', '?'))}; objective {params.get('metric', '?')} "
            f"({params.get('direction', '?')})",
        ),
        ("Search space", ", ".join(stored.space)),
        ("Fixed settings", fixed_settings(stored)),
        ("Hardware", ", ".join(hardware)),
        ("Packages", ", ".join(versions) or "?"),
        ("Code", f"git commit {tags.get('git.commit', '?')}"),
        (
            "Run",
            f"{_when(stored.parent['start'])} to {_when(stored.parent['end'])} "
            f"(study run {stored.parent['status'].lower()})",
        ),
        ("Report built", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC") + f" from {stores}"),
    ]


READING = [
    "Accuracy is the paper's metric: Keras' `accuracy` on the network's two a/b outputs, which "
    "Keras resolves to categorical accuracy - the share of pixels where the larger of the two "
    "predicted channels (a or b) is also the larger true one. It says little about colour "
    "quality. It is taken at the epoch of lowest validation loss (the weights early stopping "
    "keeps), in percent, for validation and training data alike.",
    "Validation loss: MSE on a/b / 128 (lower is better). PSNR (dB) and SSIM on RGB, higher is "
    "better; ΔE2000: mean CIEDE2000 colour difference in LAB, lower is better. All on the "
    "validation photos. Mean ± std are over seeds (sample std); one value means one trial.",
]


def best_per_group(stored, grouping) -> list[tuple[str, object]]:
    """(group label, best finished trial by the study's objective) per group, in display order."""
    from experiments.report_tables import best_trial

    complete = stored.complete_trials()
    picked = []
    for label in grouping.order:
        members = complete[(grouping.labels[complete["number"]] == label).to_numpy()]
        if len(members):
            picked.append((label, best_trial(stored, members)))
    return picked


def sample_strips(stored, grouping, scratch: Path) -> list[tuple[str, Path | None]]:
    """(caption, downloaded samples.png) of the best trial of each group, best groups first."""
    from experiments.report_figures import MAX_SAMPLE_GROUPS
    from experiments.report_store import download_artifact

    strips = []
    for label, trial in best_per_group(stored, grouping)[:MAX_SAMPLE_GROUPS]:
        folder = scratch / f"trial-{int(trial['number'])}"
        path = download_artifact(stored, trial["run_id"], "samples.png", folder)
        caption = (
            f"{label}: trial {int(trial['number'])}\nval. loss {trial['best_val_loss']:.5f}, "
            f"val. acc. {100 * trial['best_val_accuracy']:.2f}%"
        )
        strips.append((caption, path))
    return strips


def build_report(stored, reports_dir: Path) -> tuple[list[Path], int, list[str]]:
    """Write the PDF and CSV files of one stored study.

    Returns:
        The files written, the PDF's page count, and the verdict sentences (for the console).
    """
    from experiments.report_tables import comparison_tables, trials_table

    reports_dir.mkdir(parents=True, exist_ok=True)
    tables = comparison_tables(stored)
    every = trials_table(stored)
    written: list[Path] = []
    for table in [*tables, every]:
        path = reports_dir / (
            f"{stored.name}-{table.name}.csv" if table.name else f"{stored.name}.csv"
        )
        table.frame.to_csv(path, index=False)
        written.append(path)
    stale = reports_dir / f"{stored.name}-failed.csv"
    if stale.exists() and stale not in written:
        stale.unlink()

    pdf_path = reports_dir / f"{stored.name}.pdf"
    draft = reports_dir / f".{stored.name}.pdf.part"  # a failed build leaves the old PDF alone
    try:
        pages = write_pdf(stored, draft, tables, every)
        os.replace(draft, pdf_path)
    finally:
        draft.unlink(missing_ok=True)
    written.insert(0, pdf_path)
    verdicts = [tables[0].notes[0]] if tables[0].notes else []
    return written, pages, verdicts


def write_pdf(stored, path: Path, tables: list, every) -> int:
    """Write the report's pages to `path`; returns the page count."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    from experiments import paper_results, report_figures
    from experiments.report_tables import Table, trial_groups

    grouping = trial_groups(stored)
    footer = (
        f"colorize-studies report: study {stored.name}, tuner {stored.engine}, profile "
        f"{stored.params.get('profile', '?')}; {stored.completeness()}"
    )
    title = f"Study report: {stored.name}" + (" (partial)" if stored.is_partial else "")
    metadata = {
        "Title": f"Study report: {stored.name}",
        "Subject": f"{stored.name} ({stored.engine}), {stored.completeness()}",
        "Creator": "colorize-studies experiments.report",
    }
    with (
        tempfile.TemporaryDirectory() as scratch_dir,
        plt.rc_context(report_figures.RC),
        PdfPages(path, metadata=metadata) as pdf,
    ):
        scratch = Path(scratch_dir)
        doc = report_figures.Document(pdf, footer)
        doc.new_page(title)
        items = overview_items(stored, _description(stored, scratch))
        overview = Table("", "", ["What", "Value"], items, frame=None, wrap={1: 150})
        doc.table(overview, new_page=False, fill=True)
        if stored.notes:
            doc.heading("Notes", title)
            doc.paragraphs(stored.notes, title)
        doc.heading("The paper's findings", title)
        doc.paragraphs(paper_results.summary_lines(), title)
        doc.heading("Reading this report", title)
        doc.paragraphs(READING, title)
        for number, table in enumerate(tables):
            doc.table(table, new_page=number == 0)
        doc.finish()
        figure_pages = report_figures.curves_page(
            pdf,
            stored.histories,
            list(stored.trials["number"]),
            grouping,
            f"Learning curves per {grouping.title}",
            footer,
        )
        optuna_pages, optuna_notes = 0, []
        if stored.optuna_study is not None:
            optuna_pages, optuna_notes = report_figures.optuna_pages(
                pdf, stored.optuna_study, footer, f"objective: {stored.params.get('metric', '?')}"
            )
        samples = sample_strips(stored, grouping, scratch)
        count = len(best_per_group(stored, grouping))
        more = f" (the {len(samples)} best of {count})" if len(samples) < count else ""
        figure_pages += optuna_pages + report_figures.samples_pages(
            pdf, samples, f"Best trial per {grouping.title}{more}", footer
        )
        every.notes = [] if optuna_pages else optuna_notes  # else said on the history page
        doc.table(every)
        doc.finish()
    return doc.pages + figure_pages


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--help" in args or "-h" in args:
        print(help_text())
        return 0
    try:
        options = parse_args(args)
        from experiments.report_store import load_study_records

        stored = [
            load_study_records(
                name, options.runs_dir, options.tracking_uri, options.tuner, options.storage
            )
            for name in options.studies
        ]
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    reports_dir = Path(options.reports_dir).expanduser()
    for study in stored:
        try:
            files, pages, verdicts = build_report(study, reports_dir)
        except OSError as error:  # unwritable reports_dir and the like
            print(f"error: cannot write the report to {reports_dir}: {error}", file=sys.stderr)
            return USAGE_EXIT
        print(f"study {study.name} ({study.engine}), {study.completeness()}:")
        print(f"  {files[0]} ({pages} pages); tables: {', '.join(str(f) for f in files[1:])}")
        for sentence in verdicts:
            print(f"  {sentence}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
