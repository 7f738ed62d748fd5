"""Loading what users give us: models in Keras' safe mode, YAML without code."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from colorize.predict import ModelNotFound, load_model
from experiments.config import load_yaml
from experiments.errors import UsageError


def test_model_with_code_inside_is_refused(tmp_path):
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)  # arbitrary code in the file
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(ModelNotFound, match="cannot load model"):
        load_model(path)


def test_yaml_with_python_objects_is_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(UsageError, match="is not valid YAML"):
        load_yaml(path, "study")


def test_a_store_password_never_leaves_its_url(tmp_path):
    """A study on a password-protected PostgreSQL storage (two workers), its report and its
    optuna-dashboard: the password is in no console line, param, tag, artifact, file under
    `runs_dir` or the report, nor on the server's command line; a wrong one is one line."""
    import secrets
    import subprocess
    import sys

    import requests

    from tests.servers import create_database, free_port, postgres_server, wait_until
    from tests.studies_helpers import run_cli

    password = "pw-" + secrets.token_hex(8)
    runs_dir, reports_dir = tmp_path / "runs", tmp_path / "reports"
    with postgres_server(password=password) as (host, port, user):
        storage = create_database(host, port, user, "optuna", password=password)
        assert password in storage
        args = ["study=optimizers", "profile=smoke", f"runs_dir={runs_dir}", f"storage={storage}"]
        study = run_cli(*args, "workers=2")
        assert study.returncode == 0, study.stderr[-3000:]
        assert f"postgresql+psycopg2://{user}:***@" in (
            runs_dir / "mlflow.db"
        ).read_bytes().decode("latin-1")  # the storage param, masked
        report = subprocess.run(
            [sys.executable, "-m", "experiments.report", "study=optimizers",
             f"runs_dir={runs_dir}", f"storage={storage}", f"reports_dir={reports_dir}"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert report.returncode == 0, report.stderr[-3000:]
        ui_port = free_port()
        dashboard = subprocess.Popen(
            [sys.executable, "-m", "experiments.ui", "dashboard", f"storage={storage}",
             f"port={ui_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            api = f"http://127.0.0.1:{ui_port}/api/studies"

            def answers() -> bool:
                try:
                    return requests.get(api, timeout=2).ok
                except requests.RequestException:
                    return False

            wait_until(answers, 120, "optuna-dashboard")
            assert "optimizers" in requests.get(api, timeout=5).text  # it reached the storage
            command_line = (Path("/proc") / str(dashboard.pid) / "cmdline").read_bytes()
            assert password.encode() not in command_line
            assert b"***" not in command_line  # connects without it on its command line
        finally:
            dashboard.terminate()
            ui_out = dashboard.communicate(timeout=60)[0]
        wrong = run_cli(*[a.replace(password, "not-" + password) for a in args])
    assert wrong.returncode == 2
    assert wrong.stderr.strip().count("\n") == 0 and "cannot be opened" in wrong.stderr
    console = study.stdout + study.stderr + report.stdout + report.stderr + ui_out
    console += wrong.stdout + wrong.stderr
    assert password not in console
    assert "***@" in console  # the URL is still shown, masked
    leaks = [
        path
        for folder in (runs_dir, reports_dir)
        for path in folder.rglob("*")
        if path.is_file() and password.encode() in path.read_bytes()
    ]
    assert not leaks
    (pdf,) = reports_dir.glob("*.pdf")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    compact = "".join(text.split())  # table cells wrap the URL
    assert f"postgresql+psycopg2://{user}:***@" in compact and password not in compact
