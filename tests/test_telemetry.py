"""MLflow's usage telemetry as the user chose it: an opt-out in either spelling reaches the real
MLflow UI server that `experiments.ui` starts (read from the server process's own environment);
without one, nothing is changed. MLflow's GenAI job workers are off there unless the user turned
them on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.common.telemetry import OPT_OUT_VARIABLES
from experiments.ui import JOB_EXECUTION
from tests.servers import free_port, wait_until


def server_environment(pid: int) -> dict[str, str]:
    """The environment the process `pid` runs with, as the kernel holds it."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


@pytest.mark.parametrize(
    "given, expected",
    [
        ({"DO_NOT_TRACK": "1"}, "true"),  # the convention's spelling, which MLflow alone ignores
        ({"MLFLOW_DISABLE_TELEMETRY": "yes"}, "true"),  # spelt the way MLflow reads it
        ({"DO_NOT_TRACK": "0"}, None),  # the user allows it: MLflow's own default
        ({"MLFLOW_DISABLE_TELEMETRY": "false"}, "false"),  # allowed, in MLflow's own variable
        ({}, "true"),  # no choice made: off, the project's default
    ],
)
def test_the_ui_passes_the_users_telemetry_choice_to_its_server(
    given, expected, smoke_optimizers_study
):
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUT_VARIABLES} | given
    env.pop(JOB_EXECUTION, None)
    seen, out = ui_server_environment(smoke_optimizers_study[0], env)
    assert "  optimizers: http://127.0.0.1:" in out
    assert seen.get("MLFLOW_DISABLE_TELEMETRY") == expected
    if "DO_NOT_TRACK" in given:
        assert seen["DO_NOT_TRACK"] == given["DO_NOT_TRACK"]  # the user's own, kept as it was
    assert seen[JOB_EXECUTION] == "false"  # MLflow's GenAI job workers: none


def ui_server_environment(runs_dir: Path, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """The environment of the MLflow UI server `experiments.ui` starts on `runs_dir` with
    `env`, and what the command printed."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "experiments.ui", f"runs_dir={runs_dir}", f"port={port}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip

    def became_the_server() -> bool:
        assert server.poll() is None, "the UI command exited"
        try:
            return b"mlflow\0ui\0" in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        except OSError:
            return False

    try:
        # `experiments.ui` replaces itself with the server (exec): from then on the process's
        # environment is the one the server runs with, whatever it serves
        wait_until(became_the_server, 120, "the MLflow UI server")
        seen = server_environment(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    return seen, server.stdout.read()


def test_a_users_own_job_execution_setting_reaches_the_server(smoke_optimizers_study):
    """The UI turns MLflow's GenAI job workers off unless the user said otherwise."""
    # "0" (off, in MLflow's spelling) differs from the project's "false" and starts no workers
    env = {**os.environ, JOB_EXECUTION: "0"}
    seen, _ = ui_server_environment(smoke_optimizers_study[0], env)
    assert seen[JOB_EXECUTION] == "0"
