"""Build a study's comparison report (PDF plus CSV tables) from what its stores hold.

    python -m experiments.report study=optimizers                  # reads mlruns/, writes reports/
    python -m experiments.report study=optimizers,epochs runs_dir=/tmp/runs
    python -m experiments.report study=architecture engine=keras_tuner reports_dir=out
    python -m experiments.report --help

For each study it writes `<reports_dir>/<study>.pdf` and, beside it, the same tables as CSV:
`<study>.csv` (the comparison table: one row per optimizer, epoch budget or setting combination),
`<study>-trials.csv` (every trial), `<study>-failed.csv` (trials that could not be built or
trained) and `<study>-gray.csv` (the best model against gray), where there are any. It logs them
on the study's MLflow parent run under `report/` and prints that run's address. It reads only
the MLflow store and the Optuna storage that `python -m experiments.run` wrote, so it can be
rebuilt at any time, also while a study is still running ("partial: N of M trials").
A `study=` is a study's stored name: its own, or the `name=` it was run under.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from experiments.common.errors import USAGE_EXIT, UsageError

KEYS = {
    "study": "required; one study or several, comma-separated (stored names)",
    "runs_dir": "folder experiments.run wrote to (default mlruns)",
    "tracking_uri": "MLflow URI (default sqlite:///<runs_dir>/mlflow.db)",
    "storage": "Optuna storage URL (default sqlite:///<runs_dir>/optuna.db)",
    "engine": "which engine's runs: optuna (default) or keras_tuner (tuner= is deprecated)",
    "reports_dir": "where the PDF and CSV files go (default reports)",
}


def help_text() -> str:
    from experiments.settings.config import available_studies

    return "\n".join(
        [
            "usage: python -m experiments.report study=NAME[,NAME...] [key=value ...]",
            "",
            "Builds <reports_dir>/<study>.pdf and its tables as CSV from the stored runs of a",
            "study (the MLflow store and Optuna storage `python -m experiments.run` wrote), and",
            "logs them on the study's MLflow run.",
            "",
            "keys:",
            *(f"  {key:<13} {text}" for key, text in KEYS.items()),
            "",
            f"studies: {', '.join(available_studies())} (or a name= a study was run under)",
            "",
            "examples:",
            "  python -m experiments.report study=optimizers runs_dir=/tmp/runs",
            "  python -m experiments.report study=optimizers,epochs,architecture",
        ]
    )


def _stored_names(values: dict[str, str]) -> list[str]:
    """The studies a store holds, or [] when there is no readable store."""
    from experiments.report.stored_study import client, resolve_tracking_uri

    try:
        uri = resolve_tracking_uri(values.get("runs_dir") or "mlruns", values.get("tracking_uri"))
        return [e.name for e in client(uri).search_experiments()]
    except Exception:  # no store yet: the known studies are the YAML ones
        return []


def parse_args(args: list[str]) -> dict[str, object]:
    """`key=value` arguments checked; raises UsageError naming a wrong key or value."""
    from experiments.settings.config import available_studies
    from experiments.settings.engine_registry import ENGINE_ALIASES, ENGINE_NAMES
    from experiments.settings.overrides import closest, parse, take_alias

    values = parse(args, [*KEYS, *ENGINE_ALIASES])
    for alias in ENGINE_ALIASES:
        take_alias(values, alias, "engine", ENGINE_NAMES)
    studies = list(
        dict.fromkeys(n.strip() for n in values.get("study", "").split(",") if n.strip())
    )
    known = available_studies()
    if not studies:
        raise UsageError(f"study= is required; one or more of: {', '.join(known)}")
    unknown = [name for name in studies if name not in known]
    if unknown:
        stored = _stored_names(values)
        for name in unknown:
            if name not in stored:
                options = sorted(set(known) | set(stored))
                raise UsageError(
                    f"unknown study {name!r}{closest(name, options)}; allowed: {', '.join(options)}"
                )
    engine = values.get("engine", "optuna")
    if engine not in ENGINE_NAMES:
        raise UsageError(f"engine={engine} is not allowed; allowed: {', '.join(ENGINE_NAMES)}")
    return {
        "studies": studies,
        "runs_dir": values.get("runs_dir") or "mlruns",
        "tracking_uri": values.get("tracking_uri") or None,
        "storage": values.get("storage") or None,
        "engine": engine,
        "reports_dir": values.get("reports_dir") or "reports",
    }


def main(argv: list[str] | None = None) -> int:
    from experiments.common.command import command_args

    args = command_args(argv, help_text)
    if args is None:
        return 0
    try:
        options = parse_args(args)
        from experiments.report.stored_study import load_study_records

        stored = [
            load_study_records(
                name, options["runs_dir"], options["tracking_uri"], options["engine"],
                options["storage"],
            )
            for name in options["studies"]
        ]  # fmt: skip
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT
    from experiments.report.build import build_report
    from experiments.report.publish import publish

    reports_dir = Path(options["reports_dir"]).expanduser()
    for study in stored:
        try:
            report = build_report(study, reports_dir)
        except OSError as error:  # unwritable reports_dir and the like
            print(f"error: cannot write the report to {reports_dir}: {error}", file=sys.stderr)
            return USAGE_EXIT
        address = publish(study, report.files)
        files = ", ".join(str(f) for f in report.files[1:])
        print(f"study {study.name} ({study.engine}), {study.completeness()}:")
        print(f"  {report.files[0]} ({report.pages} pages); tables: {files}")
        for sentence in report.verdicts:
            print(f"  {sentence}")
        print(f"  on its MLflow run: {address}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
