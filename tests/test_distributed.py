"""Many workers on one study: local processes on SQLite, and workers on a real PostgreSQL server
with a real MLflow tracking server, both started on loopback by the tests."""

from __future__ import annotations

import optuna
from mlflow.tracking import MlflowClient

from tests.servers import create_database, mlflow_server, postgres_server
from tests.studies_helpers import run_cli

ARGS = ["study=epochs", "profile=smoke", "workers=3"]
GRID = {100, 500, 600, 1000}


def check_every_grid_point_ran_once(study: optuna.Study, client: MlflowClient) -> None:
    trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["epochs"] for t in complete) == sorted(GRID)  # each once
    assert len(trials) == len(GRID)  # no lost or extra trial
    experiment = client.get_experiment_by_name("epochs")
    runs = client.search_runs([experiment.experiment_id], "tags.`colorize.role` = 'trial'")
    assert len(runs) == len(GRID)
    assert len({r.data.tags["colorize.trial"] for r in runs}) == len(GRID)  # no duplicate run
    assert {int(r.data.params["space.epochs"]) for r in runs} == GRID
    assert {r.info.status for r in runs} == {"FINISHED"}
    parents = client.search_runs([experiment.experiment_id], "tags.`colorize.role` = 'study'")
    assert len(parents) == 1
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parents[0].info.run_id}


def test_three_local_workers_share_one_sqlite_study(tmp_path):
    result = run_cli(*ARGS, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "logs" / "epochs").glob("worker-*.log"))) == 2
    study = optuna.load_study(study_name="epochs", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    check_every_grid_point_ran_once(study, MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}"))


def test_workers_on_postgresql_storage_and_an_mlflow_server(tmp_path):
    with postgres_server() as (host, port, user):
        storage = create_database(host, port, user, "optuna")
        backend = create_database(host, port, user, "mlflow")
        (tmp_path / "artifacts").mkdir()
        with mlflow_server(backend, tmp_path / "artifacts") as tracking_uri:
            result = run_cli(
                *ARGS,
                f"runs_dir={tmp_path / 'runs'}",
                f"storage={storage}",
                f"tracking_uri={tracking_uri}",
            )
            assert result.returncode == 0, result.stderr[-3000:]
            study = optuna.load_study(study_name="epochs", storage=storage)
            check_every_grid_point_ran_once(study, MlflowClient(tracking_uri))
            assert not (tmp_path / "runs" / "optuna.db").exists()
            assert not (tmp_path / "runs" / "mlflow.db").exists()


def test_unreachable_storage_and_tracking_server_are_one_line_errors(
    tmp_path, capsys, monkeypatch
):
    """An Optuna storage, an MLflow server and an MLflow database that do not answer: one
    line at once (exit 2), from the study and from the report; nothing is written."""
    import time

    import mlflow.utils.rest_utils as rest_utils
    import requests

    from experiments.report.__main__ import main as report
    from experiments.run import main

    # the mechanism: one probe of the server's health page refuses it, before MLflow's own
    # client (which retries for minutes) sends a single request
    mlflow_requests, probes = [], []
    monkeypatch.setattr(
        rest_utils, "http_request", lambda *a, **k: mlflow_requests.append(a) or 1 / 0
    )
    real_get = requests.get
    monkeypatch.setattr(
        requests, "get", lambda url, *a, **k: probes.append(url) or real_get(url, *a, **k)
    )
    for number, (arg, message) in enumerate(
        (
            ("storage=postgresql+psycopg2://nobody@127.0.0.1:1/optuna", "cannot be opened"),
            ("tracking_uri=http://127.0.0.1:1", "is unreachable: [Errno 111] Connection refused"),
            (
                "tracking_uri=postgresql+psycopg2://nobody:pw-1234@127.0.0.1:1/mlflow",
                "is unreachable",
            ),
        )
    ):
        runs_dir = tmp_path / f"runs-{number}"
        started = time.monotonic()
        assert main(["study=optimizers", "profile=smoke", f"runs_dir={runs_dir}", arg]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and message in err
        assert "pw-1234" not in err
        assert time.monotonic() - started < 30  # a generous guard beside the mechanism
        assert not mlflow_requests
        if arg.startswith("tracking_uri=http"):
            assert probes == ["http://127.0.0.1:1/health"]
        if arg.startswith("tracking_uri="):
            assert not runs_dir.exists()  # nothing written
            started = time.monotonic()
            assert report(["study=optimizers", f"runs_dir={runs_dir}", arg]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and err.startswith("error: ") and message in err
            assert time.monotonic() - started < 30
