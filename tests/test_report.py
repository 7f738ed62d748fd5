"""The comparison report, built from real stores: a smoke optimizers study run once per session
(real Keras fits, real MLflow sqlite store, real Optuna storage), a small architecture study with
infeasible combinations, and the PDF read back with poppler's pdftotext and pdftoppm.

    pytest tests/test_report.py
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from experiments.common.errors import USAGE_EXIT
from experiments.report import __main__ as report
from experiments.report.overview import overview_items
from tests.needs import needs
from tests.studies_helpers import copy_stores

PROJECT_ROOT = Path(__file__).resolve().parent.parent
needs_poppler = needs(
    "poppler-utils (pdftotext, pdftoppm) is not installed: apt-get install poppler-utils",
    shutil.which("pdftotext") is not None and shutil.which("pdftoppm") is not None,
)


def run_study(*args: str) -> None:
    from experiments.run import main

    assert main(list(args)) == 0, f"experiments.run {' '.join(args)} failed"


def pdf_text(path: Path) -> str:
    """The PDF's text in content order (a wrapped table cell keeps its lines together)."""
    out = subprocess.run(
        ["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True
    )
    return out.stdout


def squeeze(text: str) -> str:
    return "".join(text.split())


def stored_trials(runs_dir: Path, study: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    return client.search_runs(
        [experiment.experiment_id], filter_string="tags.`colorize.role` = 'trial'"
    )


@pytest.fixture(scope="session")
def optimizer_runs(smoke_optimizers_study) -> Path:
    """A smoke optimizers study: three trials (Adamax, Adam, RMSprop; one seed), stored once."""
    return smoke_optimizers_study[0]


@pytest.fixture(scope="session")
def optimizer_report(optimizer_runs, tmp_path_factory) -> Path:
    """`python -m experiments.report study=optimizers runs_dir=...` run as a user would, from a
    fresh working directory; returns that directory."""
    workdir = tmp_path_factory.mktemp("report-cwd")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.report",
            "study=optimizers",
            f"runs_dir={optimizer_runs}",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return workdir


@needs_poppler
def test_report_of_smoke_optimizers_study_holds_paper_and_our_values(
    optimizer_runs, optimizer_report
):
    pdf = optimizer_report / "reports" / "optimizers.pdf"
    text = pdf_text(pdf)
    for word in ("Adamax", "Adam", "RMSprop", "76.94", "90.95", "complete: 3 of 3 trials"):
        assert word in text
    table = pd.read_csv(optimizer_report / "reports" / "optimizers.csv")
    assert sorted(table["optimizer"]) == ["Adam", "Adamax", "RMSprop"]
    # Our values are the stored ones: each trial's validation accuracy, as the PDF prints it.
    for run in stored_trials(optimizer_runs, "optimizers"):
        name = {"adamax": "Adamax", "adam": "Adam", "rmsprop": "RMSprop"}[
            run.data.params["optimizer"]
        ]
        accuracy = 100 * run.data.metrics["best_val_accuracy"]
        row = table[table["optimizer"] == name].iloc[0]
        assert math.isclose(row["val_accuracy_mean"], accuracy, rel_tol=1e-9)
        assert f"{accuracy:.2f}" in text
        assert f"{run.data.metrics['best_val_loss']:.5f}" in text
        assert row["epochs_run_mean"] == run.data.metrics["epochs_run"]
    # each trial's own seconds, not its run's span (logging the best model came after it)
    every = pd.read_csv(optimizer_report / "reports" / "optimizers-trials.csv")
    for run in stored_trials(optimizer_runs, "optimizers"):
        row = every[every["mlflow_run_id"] == run.info.run_id].iloc[0]
        assert row["seconds"] == float(run.data.tags["trial.seconds"])


@needs_poppler
def test_report_pages_render_and_are_not_blank(optimizer_report, tmp_path):
    pdf = optimizer_report / "reports" / "optimizers.pdf"
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    for page in pages:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=float)
        assert pixels.std() > 2, f"{page.name} looks blank"


@needs_poppler
def test_one_seed_per_optimizer_is_inconclusive_with_the_stored_gap(
    optimizer_runs, optimizer_report
):
    accuracy = {
        run.data.params["optimizer"]: 100 * run.data.metrics["best_val_accuracy"]
        for run in stored_trials(optimizer_runs, "optimizers")
    }
    text = " ".join(pdf_text(optimizer_report / "reports" / "optimizers.pdf").split())
    assert (
        "Adamax reaches a higher validation accuracy than RMSprop (paper: about 5 points "
        "higher): inconclusive." in text
    )
    gap = accuracy["adamax"] - accuracy["rmsprop"]
    assert f"Adamax minus RMSprop mean validation accuracy: {gap:+.2f} points" in text
    assert "fewer than 3" in text


def test_first_page_says_what_was_run(optimizer_runs, optimizer_report):
    from experiments.report.stored_study import load_study_records

    stored = load_study_records("optimizers", str(optimizer_runs))
    items = dict(overview_items(stored, ""))
    assert items["Trials"].startswith("complete: 3 of 3 trials: 3 finished, 0 pruned, 0 failed")
    assert "12 photos" in items["Dataset"] and "16x16" in items["Dataset"]
    assert items["Profile"] == "smoke"
    assert "optuna" in items["Engine"] and "grid" in items["Engine"]
    assert "keras" in items["Packages"] and "optuna" in items["Packages"]
    if shutil.which("pdftotext"):
        text = pdf_text(optimizer_report / "reports" / "optimizers.pdf")
        assert "complete: 3 of 3 trials" in text
        assert stored.tags["git.commit"] in text


def test_report_is_rebuilt_from_the_stores_alone(optimizer_runs, optimizer_report, tmp_path):
    """A second build, in another process's absence and another folder, gives the same tables."""
    assert (
        report.main(["study=optimizers", f"runs_dir={optimizer_runs}", f"reports_dir={tmp_path}"])
        == 0
    )
    first = optimizer_report / "reports"
    for name in ("optimizers.csv", "optimizers-trials.csv", "optimizers-paper.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(first / name), pd.read_csv(tmp_path / name))


def test_the_report_on_the_study_run_is_replaced_by_each_build(optimizer_runs, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    from tests.studies_helpers import mlflow_runs

    runs = mlflow_runs(optimizer_runs, "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]["run_id"]
    client = MlflowClient(f"sqlite:///{optimizer_runs / 'mlflow.db'}")
    stale = tmp_path / "stale.csv"
    stale.write_text("an earlier build's table\n")
    client.log_artifact(parent, str(stale), "report")
    args = ["study=optimizers", f"runs_dir={optimizer_runs}", f"reports_dir={tmp_path / 'r'}"]
    assert report.main(args) == 0
    logged = sorted(a.path for a in client.list_artifacts(parent, "report"))
    written = sorted(f"report/{p.name}" for p in (tmp_path / "r").iterdir())
    assert logged == written  # this build's files, and only them
    assert f"/runs/{parent}" in capsys.readouterr().out


@needs_poppler
def test_partial_study_is_reported_as_partial(optimizer_runs, tmp_path):
    """A study whose third trial is not on record yet (as while it still runs)."""
    from mlflow.tracking import MlflowClient

    runs_dir = tmp_path / "runs"
    copy_stores(optimizer_runs, runs_dir)
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    last = max(
        stored_trials(runs_dir, "optimizers"), key=lambda r: int(r.data.tags["colorize.trial"])
    )
    client.delete_run(last.info.run_id)
    assert (
        report.main(["study=optimizers", f"runs_dir={runs_dir}", f"reports_dir={tmp_path}"]) == 0
    )
    text = " ".join(pdf_text(tmp_path / "optimizers.pdf").split())
    assert "partial: 2 of 3 trials" in text
    assert len(pd.read_csv(tmp_path / "optimizers.csv")) == 2


def enqueue(runs_dir: Path, study: str, params: dict) -> None:
    """Put a trial at the head of the study's queue (Optuna's enqueue_trial), so which grid point
    runs first does not depend on the engine's order."""
    import optuna

    runs_dir.mkdir(parents=True, exist_ok=True)
    optuna.create_study(
        study_name=study,
        storage=f"sqlite:///{runs_dir / 'optuna.db'}",
        direction="minimize",
        load_if_exists=True,
    ).enqueue_trial(params)


@needs_poppler
def test_architecture_failures_are_listed_with_their_reason(tmp_path, capsys):
    """Valid padding with kernel 5 or 7 cannot be built at the smoke profile's 16 px. While such
    a trial is the only one the report refuses (no finished trial); once the whole study has run,
    every infeasible combination is listed with its reason and the rest sorted by validation loss."""
    runs_dir = tmp_path / "runs"
    common = ["study=architecture", "profile=smoke", f"runs_dir={runs_dir}"]
    enqueue(runs_dir, "architecture", {"kernel_size": 7, "padding": "valid", "strides": 2})
    run_study(*common, "n_trials=1")
    trials = stored_trials(runs_dir, "architecture")
    assert [r.data.tags["trial.state"] for r in trials] == ["FAIL"], "premise: k7 valid fails"
    capsys.readouterr()
    args = ["study=architecture", f"runs_dir={runs_dir}", f"reports_dir={tmp_path / 'reports'}"]
    assert report.main(args) == USAGE_EXIT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "no finished trials" in err
    assert not (tmp_path / "reports").exists()

    run_study(*common)  # the whole grid
    assert report.main(args) == 0
    trials = stored_trials(runs_dir, "architecture")
    failed = {
        (int(r.data.params["kernel_size"]), r.data.params["padding"], int(r.data.params["strides"])):
        r.data.tags["trial.fail_reason"]
        for r in trials
        if r.data.tags["trial.state"] == "FAIL"
    }  # fmt: skip
    assert sorted(failed) == [(5, "valid", 1), (5, "valid", 2), (7, "valid", 1), (7, "valid", 2)]
    text = squeeze(pdf_text(tmp_path / "reports" / "architecture.pdf"))
    for reason in failed.values():
        assert reason.startswith("InfeasibleArchitecture: ")
        assert squeeze(reason.partition(": ")[2]) in text
    assert "complete:12of12trials" in text and "4trial(s)couldnotbebuiltortrained" in text
    failures = pd.read_csv(tmp_path / "reports" / "architecture-failed.csv")
    assert sorted(
        map(tuple, failures[["kernel_size", "padding", "strides"]].values.tolist())
    ) == sorted(failed)
    combos = pd.read_csv(tmp_path / "reports" / "architecture.csv")
    trained = combos[combos["failed"] == 0]
    assert len(trained) == 8
    assert trained["val_loss_mean"].is_monotonic_increasing  # lowest validation loss first


@needs_poppler
def test_epoch_report_sets_each_budget_beside_the_paper(tmp_path):
    from mlflow.tracking import MlflowClient

    runs_dir = tmp_path / "runs"
    run_study("study=epochs", "profile=smoke", f"runs_dir={runs_dir}", "data.image_size=16")
    reports_dir = tmp_path / "reports"
    assert report.main(["study=epochs", f"runs_dir={runs_dir}", f"reports_dir={reports_dir}"]) == 0
    table = pd.read_csv(reports_dir / "epochs.csv")
    assert list(table["budget"]) == [100, 500, 600, 1000]
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    lowest = {}
    for run in stored_trials(runs_dir, "epochs"):
        row = table[table["budget"] == int(run.data.params["space.epochs"])].iloc[0]
        assert str(row["epochs_trained_budget"]) == run.data.params["epochs"]
        curve = [
            m.value
            for m in sorted(
                client.get_metric_history(run.info.run_id, "val_loss"), key=lambda m: m.step
            )
        ]
        assert row["best_epoch_mean"] == int(np.argmin(curve)) + 1
        assert row["overfit_trials"] == int(curve[-1] > min(curve) * 1.05)
        assert math.isclose(row["last_val_loss_mean"], curve[-1], rel_tol=1e-9)
        lowest[int(run.data.params["space.epochs"])] = min(curve)
    text = " ".join(pdf_text(reports_dir / "epochs.pdf").split())
    for finding in ("100 epochs underfit (a higher lowest validation loss than 500)",
                    "500 epochs gave the lowest validation loss (below 600 and 1000)",
                    "validation loss rose after its lowest epoch at 600 and 1000 (by more than "
                    "5%)"):  # fmt: skip
        assert f"{finding}: inconclusive." in text  # one seed a budget: no test can decide
    gap = lowest[100] - lowest[500]  # the first finding's evidence, from the stored curves
    assert (
        f"Budget 100 minus 500: {gap:+.5f} (Welch t-interval, 1 vs 1 seeds: fewer than 3)" in text
    )
    for finding in ("underfit", "best (lowest val. loss)", "val. loss rose"):
        assert finding in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["study=optimiser"], "unknown study 'optimiser' (did you mean optimizers?)"),
        (["study=optimizers", "runs_di=x"], "unknown key 'runs_di' (did you mean runs_dir?)"),
        (["runs_dir=x"], "study= is required"),
        (["study=optimizers", "tuner=ray"], "tuner=ray is not allowed"),
        (["study=optimizers", "--pdf"], "unknown option --pdf"),
        (["study=optimizers", "runs_dir={tmp}/missing"], "does not exist"),
        (["study=optimizers", "runs_dir={tmp}"], "holds no MLflow store"),
        (["study=optimizers", "tracking_uri=sqlite:///{tmp}/none.db"], "no MLflow store at"),
        (
            ["study=optimizers", "runs_dir={runs}", "tuner=keras_tuner"],
            "no engine=keras_tuner runs",
        ),
        (["study=optimizers,epochs", "runs_dir={runs}"], "study 'epochs' has no runs"),
    ],
)
def test_user_mistakes_are_one_line_errors(args, message, optimizer_runs, tmp_path, capsys):
    args = [a.format(tmp=tmp_path, runs=optimizer_runs) for a in args]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert report.main([*args, f"reports_dir={tmp_path / 'reports'}"]) == USAGE_EXIT
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1
    assert message in captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing created, no store


def test_cli_error_is_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.report", "study=epochs", f"runs_dir={tmp_path}/none"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    assert result.returncode == USAGE_EXIT
    assert result.stderr.startswith("error: runs_dir") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
