"""Models in MLflow: logging the best trial's model (and registering it), and resolving
`runs:/...` and `models:/...` URIs to a local `.keras` file for `python -m colorize`.

The logged model is an MLflow pyfunc model (`experiments.registry.serving.ColorizeModel`) that
`mlflow models serve` answers photos with; it carries the trial's `.keras` file and settings, so
the colorize command uses the very same network. It is logged onto the trial's run without
reopening it, so the run keeps its own start and end times.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import warnings
from functools import cache
from importlib.metadata import packages_distributions, version
from pathlib import Path

from experiments.common.errors import UsageError


@cache  # installed packages do not change while the process runs; reading them takes ~1 s
def model_requirements() -> tuple[str, ...]:
    """The packages loading the model needs, pinned to this environment: Keras, its backend's
    distribution (e.g. `tensorflow-cpu` for `tensorflow`), numpy, pandas, Pillow and MLflow.

    MLflow would infer them by loading the model in a child process, 10 s or more a study.
    This project itself is also needed (the network's layers, the colorizing code), but it is
    not on a package index: serve where it is installed (`--env-manager local`).
    """
    import keras

    distributions = packages_distributions()
    pinned: dict[str, str] = {}
    for module in ("keras", keras.backend.backend(), "numpy", "pandas", "PIL", "mlflow"):
        for name in distributions.get(module, [])[:1]:
            pinned.setdefault(name, f"{name}=={version(name)}")
    return tuple(pinned.values())


def log_best_model(run_id: str, model_path: Path, registered_name: str) -> str | None:
    """Log the `.keras` model at `model_path` (with its settings file) as the MLflow model of
    run `run_id`, registered under `registered_name`; returns its registered version."""
    import mlflow
    from mlflow.models import Model, ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    from colorize.predict import settings_path
    from experiments.registry.serving import COLUMN, ColorizeModel, input_example

    for name in ("mlflow.pyfunc", "mlflow.models.model", "mlflow.tracking._model_registry"):
        logging.getLogger(name).setLevel(logging.ERROR)  # "pickled by reference" notes
    schema = Schema([ColSpec("string", COLUMN)])
    # The logged model belongs to the active experiment (not the run's): make it the run's.
    mlflow.set_experiment(experiment_id=mlflow.MlflowClient().get_run(run_id).info.experiment_id)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        keras_file = Path(folder) / model_path.name
        shutil.copy2(model_path, keras_file)
        shutil.copy2(settings_path(model_path), settings_path(keras_file))
        info = Model.log(
            artifact_path=None,
            name="model",
            flavor=mlflow.pyfunc,
            run_id=run_id,
            python_model=ColorizeModel(),
            artifacts={"keras_model": str(keras_file), "settings": str(settings_path(keras_file))},
            signature=ModelSignature(inputs=schema, outputs=schema),
            input_example=input_example(),
            registered_model_name=registered_name,
            pip_requirements=list(model_requirements()),
        )
    version = getattr(info, "registered_model_version", None)
    return None if version is None else str(version)


def download_keras_model(uri: str, target: Path) -> Path:
    """Download an MLflow model into the folder `target` and return its `.keras` file, with its
    settings beside it."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    try:
        local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(target)))
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"cannot download model {uri}: {first[:300]}") from None
    found = sorted(local.rglob("*.keras"))
    if not found:
        raise UsageError(f"model {uri} holds no .keras file")
    return found[0]
