"""The report on the study's MLflow parent run: its PDF and CSV files logged under `report/`
(replacing an earlier build's), so browsing the MLflow UI finds them beside the trials."""

from __future__ import annotations

import contextlib
from pathlib import Path

from experiments.common.links import run_link, ui_base
from experiments.report.stored_study import StoredStudy, client

FOLDER = "report"


def run_address(stored: StoredStudy) -> str:
    """The parent run's page in the MLflow UI (its Model training view)."""
    experiment, run = stored.parent["experiment_id"], stored.parent["run_id"]
    return run_link(ui_base(stored.tracking_uri), experiment, run)


def publish(stored: StoredStudy, files: list[Path]) -> str:
    """Log `files` under `report/` on the study's parent run, replacing what was there; returns
    the run's address in the MLflow UI."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    mlflow_client = client(stored.tracking_uri)
    run_id = stored.parent["run_id"]
    repository = get_artifact_repository(mlflow_client.get_run(run_id).info.artifact_uri)
    # Nothing there yet, or a store that cannot delete: the files are overwritten in place.
    with contextlib.suppress(Exception):
        repository.delete_artifacts(FOLDER)
    for path in files:
        mlflow_client.log_artifact(run_id, str(path), FOLDER)
    return run_address(stored)
