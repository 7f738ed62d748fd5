"""The connection to MLflow: a store checked once, reached without minutes of retries, and one
experiment per stored study name, tagged as model training so the MLflow UI opens it on its
training runs rather than its GenAI view; any run's metrics, tags and artifacts. The parent run,
the trials' runs and the registered models are the parts `Tracker` is made of."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, RunTag
from mlflow.tracking import MlflowClient

from experiments.common.errors import UsageError
from experiments.common.redact import mask_secrets
from experiments.stores.mlflow_schema import seed_new_store
from experiments.stores.store_locks import store_lock
from experiments.stores.store_urls import check_reachable, check_sqlite
from experiments.tracking.model_versions import ModelVersions
from experiments.tracking.study_run import StudyRunRecords
from experiments.tracking.system_metrics import TrialSystemMetrics
from experiments.tracking.trial_runs import TrialRunRecords
from experiments.tracking.values import first_line, shown

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI opens on "Training runs"
SYSTEM_METRICS_PREFIX = "system/"
# MLflow retries a request to its server 7 times, over about 4 minutes; here 3 times, in about
# 10 s, unless the environment says otherwise
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


class Tracker(StudyRunRecords, TrialRunRecords, ModelVersions):
    """The MLflow side of one study (one stored name, one engine): the connection and the
    experiment here; the parent run, the trials' runs and the registered models in the parts
    it is made of."""

    def __init__(
        self,
        tracking_uri: str,
        study: str,
        runs_dir: str | Path,
        engine: str,
        system_metrics: bool = False,
    ):
        self.tracking_uri, self.study, self.engine = tracking_uri, study, engine
        self.system_metrics = system_metrics
        self._monitors: dict[str, TrialSystemMetrics] = {}
        self.runs_dir = Path(runs_dir)
        check_sqlite(tracking_uri, "MLflow store")
        if self.is_server:  # a server gone stops the study in seconds, not after minutes
            for name, value in HTTP_RETRIES.items():
                os.environ.setdefault(name, value)
        mlflow.set_tracking_uri(tracking_uri)
        self._check_reachable()
        # MLflow creates (and migrates) a new store's tables as a client opens it, racing any
        # other process doing the same at the same moment: they take turns
        with store_lock(tracking_uri, "mlflow-store"):
            seed_new_store(tracking_uri)  # MLflow's empty schema, not its migrations replayed
            self.client = MlflowClient(tracking_uri)
            self.experiment_id = self._experiment()
        self.parent_run_id: str | None = None
        self.location = ""  # where the engine keeps the study (`start_study_run`)
        self.fingerprint = ""
        self.dataset: dict[str, Any] | None = None  # logged on each trial's run too

    def _check_reachable(self) -> None:
        """Fail fast on an unreachable server instead of waiting out MLflow's retries."""
        check_reachable(self.tracking_uri, "tracking_uri")

    def _experiment(self) -> str:
        try:
            found = self.client.get_experiment_by_name(self.study)
            if found is not None:
                if found.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:  # made before the tag
                    self.client.set_experiment_tag(
                        found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                    )
                return found.experiment_id
            location = None
            if self.tracking_uri.startswith("sqlite:"):
                location = (self.runs_dir.resolve() / "artifacts").as_uri()
            try:
                return self.client.create_experiment(
                    self.study,
                    artifact_location=location,
                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
                )
            except mlflow.exceptions.MlflowException:
                found = self.client.get_experiment_by_name(self.study)
                if found is None:
                    raise
                return found.experiment_id  # another process created it a moment before
        except Exception as error:  # a damaged store or a server error surface as several types
            raise UsageError(
                f"tracking_uri {self.tracking_uri} cannot be used: {first_line(error)}"
            ) from None

    def unreachable(self) -> str:
        """Why the MLflow store cannot be used now ("" where it can): read back this study's
        experiment, as every trial must."""
        try:
            self._check_reachable()  # a server: asked once, not through MLflow's retries
            if not self.is_server:
                self.client.get_experiment(self.experiment_id)
        except UsageError as error:
            return str(error)
        except Exception as error:
            return f"tracking_uri {self.tracking_uri} cannot be used: {first_line(error)}"
        return ""

    @property
    def is_server(self) -> bool:
        """Whether the store is an MLflow server (reached over HTTP)."""
        return self.tracking_uri.startswith(("http://", "https://"))

    def server_gone(self) -> str:
        """Why the MLflow server does not answer ("" where it does, or is no server): asked
        once, so a server that is gone costs no round of MLflow's retries."""
        return self.unreachable() if self.is_server else ""

    def log_artifact(self, run_id: str, path: Path) -> None:
        self.client.log_artifact(run_id, str(path))

    def log_arrays(self, run_id: str, name: str, **arrays) -> None:
        """numpy arrays as one `.npz` artifact `name` of the run."""
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            np.savez_compressed(path, **arrays)
            self.client.log_artifact(run_id, str(path))

    def log_dict(self, run_id: str, content: dict, name: str) -> None:

        self.client.log_dict(run_id, json.loads(mask_secrets(json.dumps(content))), name)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in finite.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, shown(v)) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure, name: str) -> None:
        self.client.log_figure(
            run_id, figure, name, save_kwargs={"dpi": 110, "bbox_inches": "tight"}
        )
