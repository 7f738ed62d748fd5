"""MLflow's usage telemetry as the user chose it: an opt-out in either spelling reaches the MLflow
UI server that `experiments.ui` starts; without one, nothing is changed."""

from __future__ import annotations

import os

import pytest

from experiments.telemetry import OPT_OUT_VARIABLES
from experiments.ui import main as ui_main


@pytest.mark.parametrize(
    "given, off",
    [
        ({"DO_NOT_TRACK": "1"}, True),  # the convention's spelling, which MLflow alone ignores
        ({"MLFLOW_DISABLE_TELEMETRY": "yes"}, True),
        ({"DO_NOT_TRACK": "0"}, False),
        ({}, False),
    ],
)
def test_the_ui_passes_the_users_telemetry_choice_to_its_server(
    given, off, smoke_optimizers_study, monkeypatch, capsys
):
    from mlflow.environment_variables import MLFLOW_DISABLE_TELEMETRY

    runs_dir = smoke_optimizers_study[0]
    for name in OPT_OUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    started = {}
    # the server's process inherits this environment when it replaces the command's
    monkeypatch.setattr(os, "execv", lambda path, args: started.update(env=dict(os.environ)))
    assert ui_main([f"runs_dir={runs_dir}"]) == 0
    assert started, "the server was not started"
    assert "  optimizers: http://127.0.0.1:5000/#/experiments/" in capsys.readouterr().out
    assert MLFLOW_DISABLE_TELEMETRY.get() is off  # as MLflow reads it
    if not off:
        assert "MLFLOW_DISABLE_TELEMETRY" not in started["env"]
