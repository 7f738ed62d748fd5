"""Shared fixtures: the smoke dataset (tiny crops of the embedded photos) and photo folders."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
# As a user's shell has it: TensorFlow, imported first by a test module, would otherwise set
# TF_CPP_MIN_LOG_LEVEL=1 here, and every command the tests start would inherit it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# MLflow's GenAI job workers as the project's UI has them by default (off): a developer's own
# setting would otherwise change what the UI tests see
os.environ.pop("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", None)

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

SMOKE_SIZE = 32


@pytest.fixture(autouse=True)
def _fresh_artifact_locations():
    """MLflow keeps each run's artifact location per run id for the whole process; tests copy
    stores (`copy_stores`), so one run id can live in two stores here: forget them each test."""
    from mlflow.tracking._tracking_service import utils

    utils._artifact_repos_cache.clear()
    yield


@pytest.fixture(scope="session")
def smoke_data():
    from colorize.datasets import DatasetSpec, load_dataset

    return load_dataset(DatasetSpec(image_size=SMOKE_SIZE, crops_per_photo=4, val_photos=3))


@pytest.fixture(scope="session")
def embedded_photos():
    from colorize.datasets import embedded_arrays

    return embedded_arrays()


def write_photo(path: Path, rgb: np.ndarray, size: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(rgb)
    image.thumbnail((size * 2, size * 2))
    image.save(path)
    return path


@pytest.fixture
def photo_folder(tmp_path, embedded_photos) -> Path:
    """A training folder of six small colour photos in mixed formats and subfolders."""
    folder = tmp_path / "train"
    names = sorted(embedded_photos)[:6]
    suffixes = [".jpg", ".png", ".bmp", ".tiff", ".webp", ".JPG"]
    for i, (name, suffix) in enumerate(zip(names, suffixes, strict=True)):
        sub = "nested/" if i % 2 else ""
        write_photo(folder / f"{sub}photo{i}{suffix}", embedded_photos[name])
    return folder


@pytest.fixture(scope="session")
def smoke_optimizers_study(tmp_path_factory, worker_id):
    """One smoke `optimizers` study run through the real command, once for the whole run
    (`study_built_once`), shared by the tests that only read it (or rerun it, which adds
    nothing): (this worker's copy of its runs_dir, the finished process). Run in a new
    process, so its console is the one a user sees (`test_studies` reads it)."""
    from tests.built_once import study_built_once
    from tests.studies_helpers import run_cli

    def build(runs_dir: Path):
        # compiled, as at the quick profile (the smoke profile runs eagerly to start sooner)
        return run_cli(
            "study=optimizers", "profile=smoke", "trainer.run_eagerly=false",
            f"runs_dir={runs_dir}", fresh=True,
        )  # fmt: skip

    return study_built_once(tmp_path_factory, worker_id, "smoke-optimizers", build)


@pytest.fixture(scope="session")
def smoke_losses_study(tmp_path_factory, worker_id):
    """One smoke `losses` study (both heads trained and registered) run through the command,
    once for the whole run (`study_built_once`), shared by the tests of the heads and of the
    human test, each of which works on its own copy (`copy_stores`): (runs_dir, the finished
    command)."""
    from tests.built_once import study_built_once
    from tests.studies_helpers import run_cli

    def build(runs_dir: Path):
        return run_cli("study=losses", "profile=smoke", f"runs_dir={runs_dir}")

    return study_built_once(tmp_path_factory, worker_id, "smoke-losses", build, folder="mlruns")


def pytest_collection_finish(session):
    """What the test modules imported (TensorFlow, Keras, MLflow, Optuna: about a million
    objects) lives as long as this process: kept out of the cycle collector's sight, which
    otherwise walks it on every full collection (each Keras `clear_session`, each study's
    start), a tenth of the suite's time. What the tests make is still collected."""
    import gc

    if os.environ.get("COLORIZE_TEST_NO_FREEZE"):
        return
    gc.collect()
    gc.freeze()


def pytest_runtest_setup(item):
    """A test marked `needs(what, present)` (`tests/needs.py`) without what it needs: skipped
    here, failed in CI."""
    from tests.needs import missing

    for mark in item.iter_markers("needs"):
        what, present = mark.args
        if not present:
            missing(what)


def pytest_terminal_summary(terminalreporter):
    """Name the Keras backends no test ran on (not installed), so a green run says so."""
    from tests.needs import UNTESTED

    reasons = set()
    for report in terminalreporter.stats.get("skipped", []):
        if isinstance(report.longrepr, tuple) and UNTESTED in report.longrepr[2]:
            reasons.add(report.longrepr[2].split(UNTESTED, 1)[1])
    if reasons:
        terminalreporter.write_sep("=", "backends not tested")
        for reason in sorted(reasons):
            terminalreporter.write_line(reason)
