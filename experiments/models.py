"""Models in MLflow: logging the best trial's model (and registering it), and resolving
`runs:/...` and `models:/...` URIs to a local `.keras` file for `python -m colorize`."""

from __future__ import annotations

import json
import logging
import os
from importlib.metadata import packages_distributions, version
from pathlib import Path

import yaml

from experiments.errors import UsageError


def model_requirements() -> list[str]:
    """The packages loading the model needs, pinned to this environment: Keras, its backend's
    distribution (e.g. `tensorflow-cpu` for `tensorflow`) and numpy.

    MLflow would infer the same by loading the model in a child process, 10 s or more a study.
    This project itself is also needed (its custom layers), but it is not on a package index.
    """
    import keras

    distributions = packages_distributions()
    pinned: dict[str, str] = {}
    for module in ("keras", keras.backend.backend(), "numpy"):
        for name in distributions.get(module, [])[:1]:
            pinned.setdefault(name, f"{name}=={version(name)}")
    return list(pinned.values())


def log_best_model(run_id: str, model_path: Path, registered_name: str) -> str:
    """Log the `.keras` model at `model_path` as the MLflow model of run `run_id`, registered
    under `registered_name`; returns the model URI."""
    import mlflow
    import mlflow.keras

    from colorize.predict import load_model

    model, settings = load_model(model_path)
    logging.getLogger("mlflow.keras").setLevel(logging.ERROR)  # "no signature" is expected here
    client = mlflow.MlflowClient()
    ended = client.get_run(run_id).info
    with mlflow.start_run(run_id=run_id):
        info = mlflow.keras.log_model(
            model,
            name="model",
            registered_model_name=registered_name,
            metadata=settings,
            pip_requirements=model_requirements(),
        )
    # Reopening the run rewrote its end time: the trial's own time is what the run shows.
    client.set_terminated(run_id, status=ended.status, end_time=ended.end_time)
    return info.model_uri


def download_keras_model(uri: str) -> Path:
    """Download an MLflow model and return its `.keras` file, with its settings beside it."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(uri))
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"cannot download model {uri}: {first[:300]}") from None
    found = sorted(local.rglob("*.keras"))
    if not found:
        raise UsageError(f"model {uri} holds no .keras file")
    mlmodel = local / "MLmodel"
    metadata = {}
    if mlmodel.exists():
        metadata = (yaml.safe_load(mlmodel.read_text()) or {}).get("metadata") or {}
    found[0].with_suffix(".json").write_text(json.dumps(metadata))
    return found[0]
