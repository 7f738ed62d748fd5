"""Loading what users give us: models in Keras' safe mode, YAML without code."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import keras
import pytest

from colorize.predict import ModelNotFound, load_model
from experiments.common.errors import UsageError
from experiments.settings.config import load_yaml
from tests.servers import session_command_lines


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


def run_watching_command_lines(*args: str) -> tuple[subprocess.CompletedProcess, set[bytes]]:
    """Run a study and, while it runs, read the command line of every process it starts (its
    workers and their children, all in its session) as `ps` would show them; the study's own
    command line is the user's, as typed, and so is that of a process it forks."""
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    seen: set[bytes] = set()
    outputs: list[str] = []
    reader = threading.Thread(target=lambda: outputs.extend(process.communicate(timeout=600)))
    reader.start()
    typed = b"".join(arg.encode() + b"\0" for arg in process.args)  # as /proc holds argv
    while reader.is_alive():
        seen.update(session_command_lines(process.pid, but=process.pid))
        reader.join(timeout=0.2)
    seen.discard(typed)  # a fork of the study itself (a library's helper) still shows its argv
    out, err = outputs or ("", "")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err), seen


def optuna_table_text(storage: str) -> str:
    """Every text value in every table of the Optuna storage, joined."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(storage)
    texts = []
    try:
        with engine.connect() as connection:
            for table in sqlalchemy.inspect(connection).get_table_names():
                rows = connection.execute(sqlalchemy.text(f'SELECT * FROM "{table}"'))
                texts += [str(value) for row in rows for value in row]
    finally:
        engine.dispose()
    assert texts, "the storage holds nothing"
    return "\n".join(texts)


def test_a_store_password_never_leaves_its_url(tmp_path):
    """A study on a password-protected PostgreSQL storage (two workers), its report, its
    optuna-dashboard and the MLflow UI on a store in that server: the password is in no
    console line, param, tag, artifact, file under `runs_dir` or the report, nor on any UI
    server's command line (`ps`); a wrong one is one line, from the study and the report."""
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
        study, seen = run_watching_command_lines(*args, "workers=2")
        assert study.returncode == 0, study.stderr[-3000:]
        workers = {c for c in seen if b"experiments.run" in c}
        assert workers, seen  # the worker it started was seen
        assert not [c for c in seen if password.encode() in c]  # on no command line
        assert password not in optuna_table_text(storage)
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
        # the MLflow UI on a store in the same password-protected server
        mlflow_store = create_database(host, port, user, "mlflow", password=password)
        ui_port = free_port()
        mlflow_ui = subprocess.Popen(
            [sys.executable, "-m", "experiments.ui", f"tracking_uri={mlflow_store}",
             f"port={ui_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:

            def healthy() -> bool:
                try:
                    return requests.get(f"http://127.0.0.1:{ui_port}/health", timeout=2).ok
                except requests.RequestException:
                    return False

            wait_until(healthy, 180, "the MLflow UI")
            command_lines = session_command_lines(mlflow_ui.pid)  # the server and its workers
            assert command_lines and not [c for c in command_lines if password.encode() in c]
        finally:
            os.killpg(mlflow_ui.pid, signal.SIGTERM)
            mlflow_out = mlflow_ui.communicate(timeout=60)[0]
        wrong_args = [a.replace(password, "not-" + password) for a in args]
        wrong = run_cli(*wrong_args)
        wrong_report = subprocess.run(
            [sys.executable, "-m", "experiments.report", "study=optimizers",
             f"runs_dir={runs_dir}", wrong_args[-1], f"reports_dir={tmp_path / 'wrong'}"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert wrong.returncode == 2
    assert wrong.stderr.strip().count("\n") == 0 and "cannot be opened" in wrong.stderr
    assert wrong_report.returncode == 2, wrong_report.stderr[-3000:]
    assert wrong_report.stderr.strip().count("\n") == 0 and "Traceback" not in (
        wrong_report.stderr
    )
    console = study.stdout + study.stderr + report.stdout + report.stderr + ui_out
    console += wrong.stdout + wrong.stderr + mlflow_out + wrong_report.stdout
    console += wrong_report.stderr
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
