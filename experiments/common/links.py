"""Addresses of MLflow UI pages, each opening the "Model training" view.

MLflow 3 opens an experiment on its GenAI "Overview" unless told otherwise; the UI reads the
view from the address (`?workflowType=machine_learning`), so every link printed here lands on
the study's training runs.
"""

from __future__ import annotations

from experiments.common.redact import masked_url

LOCAL_UI = "http://127.0.0.1:5000"  # where `python -m experiments.ui` serves by default
MODEL_TRAINING = "workflowType=machine_learning"


def ui_base(tracking_uri: str) -> str:
    """The UI that shows a store: an MLflow server serves its own; any other store is shown by
    `python -m experiments.ui` at `LOCAL_UI`. A password in the address is masked."""
    if tracking_uri.startswith(("http://", "https://")):
        return masked_url(tracking_uri).rstrip("/")
    return LOCAL_UI


def experiment_link(base: str, experiment_id: str) -> str:
    """The experiment's runs, in the Model training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}?{MODEL_TRAINING}"


def run_link(base: str, experiment_id: str, run_id: str) -> str:
    """One run's page, in the Model training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{MODEL_TRAINING}"
