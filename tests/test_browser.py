"""The MLflow UI and optuna-dashboard over the stores of a smoke study, in headless Chromium.

Starts the real servers (`python -m experiments.ui`, `... ui dashboard`) on free loopback ports,
checks what a user looks for (from the home page, the study's experiment opening on its trial
runs with their optimizer; the printed links opening the Model training view; the report and the
dataset on the study's run, the study and its trials in the dashboard), saves screenshots under
`test-artifacts/`, and stops each server with its children.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.needs import needs
from tests.servers import free_port, running, session_command_lines
from tests.studies_helpers import load_trials, mlflow_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [  # a closed network: no background connections, no first-run work
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    needs("Debian's chromium is not installed", CHROMIUM is not None),
]


@pytest.fixture(scope="module")
def ui(smoke_optimizers_study):
    runs_dir = smoke_optimizers_study[0]
    port = free_port()
    command = [sys.executable, "-m", "experiments.ui", f"runs_dir={runs_dir}", f"port={port}"]
    url = f"http://127.0.0.1:{port}"
    with running(command, f"{url}/health") as server:
        yield url, runs_dir, server.pid


def browser_page(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    return browser, browser.new_page(viewport={"width": 1500, "height": 900})


def test_ui_is_bound_to_loopback_only(ui):
    url, _, _ = ui
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    listening = [line for line in out.splitlines() if f":{port} " in line]
    assert listening and all("127.0.0.1:" in line for line in listening), listening


def test_the_ui_runs_without_mlflows_job_workers(ui):
    """The UI server's session holds the server alone: none of the job runner and seven
    workers MLflow starts for its GenAI jobs (about 1.9 GB, `bench/bench_ui_processes.py`)."""
    _, _, server = ui
    commands = session_command_lines(server)  # the UI command's session: it became the server
    assert any(b"uvicorn" in c for c in commands), commands  # the server itself
    assert not [c for c in commands if b"mlflow.server.jobs" in c or b"huey" in c], commands


def test_study_experiment_lists_its_runs_with_their_optimizer(ui):
    from playwright.sync_api import sync_playwright

    url, runs_dir, _ = ui
    runs = mlflow_runs(runs_dir, "optimizers")
    trials = runs[runs["tags.colorize.role"] == "trial"]
    experiment_id = runs["experiment_id"].iloc[0]
    ARTIFACTS.mkdir(exist_ok=True)
    kind = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}").get_experiment(experiment_id).tags
    assert kind["mlflow.experimentKind"] == "custom_model_development"
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(f"{url}/")  # as a person starts: the home page, then the study's experiment
        page.get_by_text("Model training", exact=True).click(timeout=60_000)  # sidebar switch
        page.get_by_role("link", name="optimizers", exact=True).first.click(timeout=60_000)
        page.get_by_text("optimizers (optuna)").wait_for(timeout=60_000)
        assert f"/experiments/{experiment_id}/runs" in page.url
        # Trials are nested under the study's run: expand it.
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        for name in trials["tags.mlflow.runName"]:
            page.get_by_text(name, exact=True).wait_for(timeout=30_000)
        assert page.get_by_text("embedded").count() >= len(runs)  # each run with its dataset
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-experiment.png"))
        for _, trial in trials.iterrows():
            page.goto(f"{url}/#/experiments/{experiment_id}/runs/{trial['run_id']}")
            page.get_by_text("optimizer", exact=True).first.wait_for(timeout=30_000)
            page.get_by_text(trial["params.optimizer"], exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-trial.png"))
        browser.close()
    assert (ARTIFACTS / "mlflow-ui-experiment.png").stat().st_size > 10_000


def test_every_printed_link_opens_the_model_training_view(ui, smoke_optimizers_study):
    """In a fresh browser (no view remembered), the link a study prints last, the one
    `experiments.ui` lists and the report's link to the study's run open the training runs,
    not MLflow's GenAI overview."""
    from playwright.sync_api import sync_playwright

    from experiments.common.links import LOCAL_UI, run_link
    from experiments.ui import runs_links

    url, runs_dir, _ = ui
    lines = smoke_optimizers_study[1].stdout.strip().splitlines()
    study_link = lines[-2].removeprefix("the study's runs in the MLflow UI: ")
    assert study_link.startswith(LOCAL_UI) and study_link.endswith(
        "?workflowType=machine_learning"
    )
    host, port = url.removeprefix("http://").split(":")
    (listed,) = [
        line.split(": ", 1)[1]
        for line in runs_links(f"sqlite:///{runs_dir / 'mlflow.db'}", host, port).splitlines()
        if line.startswith("  optimizers: ")
    ]
    assert listed == study_link.replace(LOCAL_UI, url)
    runs = mlflow_runs(runs_dir, "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    trial_name = runs.loc[runs["tags.colorize.role"] == "trial", "tags.mlflow.runName"].iloc[0]
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(listed)
        page.get_by_text("optimizers (optuna)").wait_for(timeout=60_000)  # the study's run
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        page.get_by_text(trial_name, exact=True).wait_for(timeout=30_000)  # its trials listed
        assert "/runs" in page.url and "/overview" not in page.url
        assert page.get_by_text("Model training", exact=True).count() >= 1
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-printed-link.png"))
        page.goto(run_link(url, parent["experiment_id"], parent["run_id"]))
        page.get_by_text("optimizers (optuna)").first.wait_for(timeout=60_000)
        page.get_by_text("Parameters", exact=False).first.wait_for(timeout=30_000)
        assert f"/runs/{parent['run_id']}" in page.url
        browser.close()


def test_the_report_and_the_dataset_show_on_the_study_run(ui, tmp_path):
    """After the report is built, the study's run in the UI lists it under `report/`, and the
    runs list shows each run's dataset."""
    from playwright.sync_api import sync_playwright

    from experiments.report.__main__ import main as report_main

    url, runs_dir, _ = ui
    assert (
        report_main(["study=optimizers", f"runs_dir={runs_dir}", f"reports_dir={tmp_path}"]) == 0
    )
    runs = mlflow_runs(runs_dir, "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.goto(
            f"{url}/#/experiments/{parent['experiment_id']}/runs/{parent['run_id']}/artifacts"
        )
        page.get_by_text("report", exact=True).first.click(timeout=60_000)
        page.get_by_text("optimizers.pdf").first.click(timeout=30_000)  # previewed
        page.wait_for_timeout(3_000)  # the PDF viewer draws on a canvas: nothing to wait on
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-report.png"))
        page.goto(f"{url}/#/experiments/{parent['experiment_id']}/runs")
        page.get_by_text("embedded").first.wait_for(timeout=60_000)  # the Dataset column
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        trial_names = runs.loc[runs["tags.colorize.role"] == "trial", "tags.mlflow.runName"]
        page.get_by_text(trial_names.iloc[0], exact=True).wait_for(timeout=30_000)
        assert page.get_by_text("embedded").count() >= len(runs)  # each run with its dataset
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-datasets.png"))
        browser.close()


def test_optuna_dashboard_shows_the_study_and_its_trials(smoke_optimizers_study):
    from playwright.sync_api import sync_playwright

    runs_dir = smoke_optimizers_study[0]
    port = free_port()
    command = [sys.executable, "-m", "experiments.ui", "dashboard", f"runs_dir={runs_dir}",
               f"port={port}"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    trials = load_trials(runs_dir, "optimizers")
    ARTIFACTS.mkdir(exist_ok=True)
    with running(command, f"{url}/api/studies"), sync_playwright() as playwright:
        listening = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        assert all("127.0.0.1:" in line for line in listening.splitlines() if f":{port} " in line)
        browser, page = browser_page(playwright)
        page.goto(f"{url}/dashboard/")
        page.get_by_text("optimizers").first.click(timeout=60_000)  # the study, listed
        page.wait_for_url("**/dashboard/studies/*", timeout=60_000)
        page.get_by_text("val_loss").first.wait_for(timeout=30_000)  # the objective, named
        assert page.get_by_text("Objective 0").count() == 0
        page.goto(page.url.rstrip("/") + "/trials")  # its trials, one by one
        for trial in trials:
            page.get_by_text(f"Trial {trial.number}", exact=False).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "optuna-dashboard-trials.png"))
        browser.close()
    assert (ARTIFACTS / "optuna-dashboard-trials.png").stat().st_size > 10_000
