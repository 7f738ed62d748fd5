"""The MLflow UI over a store made by a smoke study, opened in headless Chromium.

Starts the real UI (`python -m experiments.ui`) on a free loopback port, checks that the study's
experiment lists its trial runs and that each run shows its optimizer param, saves screenshots
under `test-artifacts/`, and stops the server with its children.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.servers import free_port, wait_until
from tests.studies_helpers import mlflow_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [  # a closed network: no background connections, no first-run work
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]


@pytest.fixture(scope="module")
def ui(smoke_optimizers_study):
    runs_dir = smoke_optimizers_study[0]
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.ui", f"runs_dir={runs_dir}", f"port={port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, "the MLflow UI exited"
        try:
            return requests.get(f"{url}/health", timeout=2).ok
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, 120, "MLflow UI")
        yield url, runs_dir
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def group_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(group_gone, 30, "the end of the server's process group")  # workers too


def test_ui_is_bound_to_loopback_only(ui):
    url, _ = ui
    port = url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
    listening = [line for line in out.splitlines() if f":{port} " in line]
    assert listening and all("127.0.0.1:" in line for line in listening), listening


def test_study_experiment_lists_its_runs_with_their_optimizer(ui):
    from playwright.sync_api import sync_playwright

    url, runs_dir = ui
    runs = mlflow_runs(runs_dir, "optimizers")
    trials = runs[runs["tags.colorize.role"] == "trial"]
    experiment_id = runs["experiment_id"].iloc[0]
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1500, "height": 900})
        page.goto(f"{url}/#/experiments/{experiment_id}/runs")
        page.get_by_text("optimizers (optuna)").wait_for(timeout=60_000)
        # Trials are nested under the study's run: expand it.
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()
        for name in trials["tags.mlflow.runName"]:
            page.get_by_text(name, exact=True).wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-experiment.png"))
        for _, trial in trials.iterrows():
            page.goto(f"{url}/#/experiments/{experiment_id}/runs/{trial['run_id']}")
            page.get_by_text("optimizer", exact=True).first.wait_for(timeout=30_000)
            page.get_by_text(trial["params.optimizer"], exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "mlflow-ui-trial.png"))
        browser.close()
    assert (ARTIFACTS / "mlflow-ui-experiment.png").stat().st_size > 10_000
