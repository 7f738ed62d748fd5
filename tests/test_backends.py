"""The study and the colorize command on the other Keras backends, as a GPU machine without
TensorFlow runs them: mixed precision, compact batches scaled on the device, registered model."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest
from PIL import Image

from tests.needs import untested_backend
from tests.studies_helpers import (
    colorize_photo_with_registered_model,
    load_trials,
    mlflow_runs,
    native_log_lines,
    run_cli,
)

BACKENDS = [
    "jax",
    pytest.param(
        "torch",
        marks=[]
        if find_spec("torch")
        else untested_backend(
            "torch", "not installed: not a test dependency, 4 GB with its CUDA libraries"
        ),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_study_and_colorize_run_on_the_backend(backend, tmp_path, monkeypatch, embedded_photos):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    runs_dir = tmp_path / "runs"
    study = run_cli(
        "study=optimizers",
        "profile=smoke",
        "n_trials=1",
        "trainer.mixed_precision=true",
        "trainer.run_eagerly=false",  # compiled, as on a GPU
        f"runs_dir={runs_dir}",
        fresh=True,  # a new process on the backend chosen
    )
    assert study.returncode == 0, study.stderr[-3000:]
    # Keras imports TensorFlow where installed, even on another backend: quietly, here too.
    assert not native_log_lines(study.stderr)
    (trial,) = [t for t in load_trials(runs_dir, "optimizers") if t.state.name == "COMPLETE"]
    assert np.isfinite(trial.value)
    runs = mlflow_runs(runs_dir, "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    assert parent["tags.keras.backend"] == backend
    child = runs[runs["tags.colorize.role"] == "trial"].iloc[0]
    assert child["params.mixed_precision"] == "True"

    (requirements,) = runs_dir.glob("artifacts/models/*/artifacts/requirements.txt")
    pinned = {line.split("==")[0] for line in requirements.read_text().split()}
    assert {"keras", backend, "numpy"} <= pinned  # what loading the model needs

    photo, out, colorized = colorize_photo_with_registered_model(
        runs_dir, tmp_path, embedded_photos["skimage:chelsea"]
    )
    assert colorized.returncode == 0, colorized.stderr[-2000:]
    assert not native_log_lines(colorized.stderr)
    with Image.open(photo) as given, Image.open(out / "cat.png") as colorized_photo:
        assert colorized_photo.size == given.size and colorized_photo.mode == "RGB"


@pytest.mark.parametrize(
    "backend,message",
    [
        (
            "nope",
            "Keras backend 'nope' (KERAS_BACKEND or ~/.keras/keras.json) is not a Keras backend; "
            "allowed: tensorflow, jax, torch",
        ),
        pytest.param(
            "openvino",
            "Keras backend 'openvino' needs the openvino package, which is not installed",
            marks=pytest.mark.skipif(find_spec("openvino") is not None, reason="installed"),
        ),
    ],
)
@pytest.mark.parametrize("command", ["experiments.run", "colorize"])
def test_unusable_backend_is_a_one_line_error(backend, message, command, tmp_path, photo_folder):
    args = {
        "experiments.run": ["study=optimizers", "profile=smoke", f"runs_dir={tmp_path / 'runs'}"],
        "colorize": ["--model", "m.keras", "--input", str(photo_folder), "--output", "out"],
    }[command]
    result = subprocess.run(
        [sys.executable, "-m", command, *args],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "KERAS_BACKEND": backend},
    )  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "out").exists()


COUNT_COLLECTIONS = """
import gc, importlib, sys

module, function = sys.argv[1].split(":")
load = getattr(importlib.import_module(module), function)
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info))
if sys.argv[2] == "off":
    gc.disable()
load()
print(len(collections), gc.isenabled())
"""


@pytest.mark.parametrize(
    "load", ["colorize.backend:import_keras_quietly", "experiments.flow.study:load_libraries"]
)
def test_libraries_are_imported_without_collections(load):
    """Keras alone (commands that predict), or with MLflow and Optuna (a study): imports make
    about a million objects and no garbage, so no collection runs while they do (a new process:
    only there are the libraries not imported yet)."""
    result = subprocess.run(
        [sys.executable, "-c", COUNT_COLLECTIONS, load, "on"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    count, enabled = result.stdout.split()
    # none while importing (over 1,000 without the pause); the collector handed back may run
    # once on the young objects as the function returns
    assert int(count) <= 1
    assert enabled == "True"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_handed_back_as_the_command_had_it(enabled):
    import gc

    from colorize.backend import collector_paused

    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), collector_paused():  # an import that fails, too
            raise RuntimeError
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
