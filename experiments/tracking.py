"""MLflow records of a study: one experiment per stored study name, a parent run per engine and a
child run per trial, with the trial's params, per-epoch curves, final metrics, tags and artifacts.

All calls go through `MlflowClient` with explicit run ids, so nothing depends on a global
"active run", and a run's status always follows its trial (FINISHED, KILLED for pruned or
interrupted, FAILED with the reason). The trial engines are the truth: where a killed worker left
a run that disagrees with its trial, `settle_trial_run` makes it agree.

Each experiment is tagged as model training (`mlflow.experimentKind`), so the MLflow UI opens it on
its training runs rather than its GenAI view. With `system_metrics`, each trial's run gets MLflow's
system metrics (`system/cpu_utilization_percentage`, memory, disk, network and, where an NVIDIA GPU
is present, its utilisation and memory), sampled while the trial runs and once more as it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from experiments import records as r
from experiments.errors import UsageError
from experiments.liveness import Liveness, judge, this_worker
from experiments.redact import mask_secrets
from experiments.store_locks import store_lock
from experiments.store_urls import check_reachable, check_sqlite

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI opens on "Training runs"
SYSTEM_METRICS_PREFIX = "system/"
# MLflow retries a request to its server 7 times, over about 4 minutes; here 3 times, in about
# 10 s, unless the environment says otherwise
HTTP_RETRIES = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def _first_line(error: Exception) -> str:
    return mask_secrets((str(error).splitlines() or [type(error).__name__])[0][:300])


def _shown(value: Any) -> str:
    """A param or tag value as stored: text, with any secret masked."""
    return mask_secrets(str(value))


def _label(name: str, value: Any) -> str:
    if name == "optimizer":
        return str(value)
    return f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"


def trial_run_name(number: int, params: dict[str, Any]) -> str:
    """'trial-003 adam seed=1': the trial number and its searched values, readable in a list."""
    return " ".join([f"trial-{number:03d}", *(_label(k, v) for k, v in params.items())])


class Tracker:
    """The MLflow side of one study (one stored name, one engine)."""

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
                f"tracking_uri {self.tracking_uri} cannot be used: {_first_line(error)}"
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
            return f"tracking_uri {self.tracking_uri} cannot be used: {_first_line(error)}"
        return ""

    @property
    def is_server(self) -> bool:
        """Whether the store is an MLflow server (reached over HTTP)."""
        return self.tracking_uri.startswith(("http://", "https://"))

    def server_gone(self) -> str:
        """Why the MLflow server does not answer ("" where it does, or is no server): asked
        once, so a server that is gone costs no round of MLflow's retries."""
        return self.unreachable() if self.is_server else ""

    # --- the study's parent run -------------------------------------------------------------
    def find_study_run(self):
        """This study's parent run of this engine (the oldest, should two have been made at
        once), or None."""
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{r.ROLE_TAG}` = '{r.ROLE_STUDY}' and tags.`{r.ENGINE_TAG}` = '{self.engine}'"
            ),
        )
        return min(found, key=lambda run: (run.info.start_time, run.info.run_id), default=None)

    def start_study_run(self, location: str, definition: str, fingerprint: str) -> str:
        """Reopen this study's parent run, or create it. Two processes that start the study at
        the same moment may both create one: each looks again after creating, and the one
        whose run is not the oldest deletes its own and joins the oldest."""
        self.fingerprint, self.location = fingerprint, location
        existing = self.find_study_run()
        if existing is None:
            created = self._create_study_run(location, definition, fingerprint)
            existing = self.find_study_run()
            if existing is None or existing.info.run_id == created:
                self.parent_run_id = created
                return created
            self.client.delete_run(created)
        self.parent_run_id = existing.info.run_id
        self.client.update_run(self.parent_run_id, status="RUNNING")
        self.set_tags(self.parent_run_id, {r.FINGERPRINT_TAG: fingerprint})
        return self.parent_run_id

    def _create_study_run(self, location: str, definition: str, fingerprint: str) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.study} ({self.engine})",
            tags={
                r.ROLE_TAG: r.ROLE_STUDY,
                r.STUDY_TAG: self.study,
                r.DEFINITION_TAG: definition,
                r.ENGINE_TAG: self.engine,
                r.FINGERPRINT_TAG: fingerprint,
                "optuna.storage": _shown(location),
            },
        )
        return run.info.run_id

    def stored_fingerprint(self, unless: str) -> dict[str, Any] | None:
        """The fingerprint values this study's parent run was recorded with, or None where it
        has none or its hash is `unless` (the same settings: nothing to compare). A run whose
        fingerprint file is gone gives just its hash, so it still differs."""
        parent = self.find_study_run()
        recorded = parent.data.tags.get(r.FINGERPRINT_TAG) if parent else None
        if not recorded or recorded == unless:
            return None
        import json
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = self.client.download_artifacts(
                    parent.info.run_id, r.FINGERPRINT_ARTIFACT, scratch
                )
                return json.loads(Path(path).read_text())
            except Exception:  # no artifact: say that it differs without the detail
                return {"fingerprint": recorded}

    def study_run_tag(self, key: str) -> str | None:
        """A tag of this study's parent run (as it is stored now)."""
        return self.client.get_run(self.parent_run_id).data.tags.get(key)

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
        import json

        self.client.log_dict(run_id, json.loads(mask_secrets(json.dumps(content))), name)

    def publishing(self, registered: str):
        """A lock on registering `registered`'s versions and aliases: two processes finishing
        the study together take turns, so the second finds the first's versions and adds none.
        It is held in the MLflow store, or, where that is a server (which has no lock), in the
        study's own storage (`location`), which every host running the study shares. A lock
        that cannot be taken stops the registration (a one-line `UsageError`)."""
        where = self.location if self.is_server else self.tracking_uri
        return store_lock(where, f"publish.{registered}", required=True)

    def register_model(
        self, run_id: str, model_path: Path, registered: str, latest: bool = False
    ) -> str | None:
        """Log a trial's saved model on its run and register it; returns its version. Two
        processes finishing the study together may both register it: the one whose version is
        not the first of the pair deletes its own (`latest`: the run is being registered again
        to be the newest, so only versions after every other run's count as the pair)."""
        from experiments.model_registry import log_best_model

        version = log_best_model(run_id, model_path, registered)
        return self._keep_first_version(registered, run_id, version, latest)

    def _keep_first_version(
        self, registered: str, run_id: str, version: str | None, latest: bool
    ) -> str | None:
        found = self.client.search_model_versions(f"name='{registered}'")
        newest_other = max((int(v.version) for v in found if v.run_id != run_id), default=0)
        mine = sorted(
            int(v.version)
            for v in found
            if v.run_id == run_id and (not latest or int(v.version) > newest_other)
        )
        if version is None or not mine or int(version) == mine[0]:
            return version
        with contextlib.suppress(mlflow.exceptions.MlflowException):  # gone already
            self.client.delete_model_version(registered, version)
        return str(mine[0])

    def model_version(self, registered: str, run_id: str | None) -> str | None:
        """The newest version of registered model `registered` logged from run `run_id` (any
        run: None), if any."""
        where = f"name='{registered}'" + (f" and run_id='{run_id}'" if run_id else "")
        try:
            found = self.client.search_model_versions(where)
        except Exception:  # no such registered model yet
            return None
        return max((v.version for v in found), key=int, default=None)

    def alias_run_id(self, registered: str, alias: str) -> str | None:
        """The run whose model version carries `alias`; None where no version does."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(registered, alias).run_id
        except MlflowException:
            return None

    def set_model_alias(self, registered: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(registered, alias, version)

    def log_study_setup(
        self, config_yaml: str, params: dict[str, Any], tags: dict[str, Any], texts: dict
    ) -> None:
        """Params (first run only: params cannot change), tags of this (re)start and artifacts
        (`texts`: artifact path -> text or dict)."""
        run_id = self.parent_run_id
        self.set_tags(run_id, tags)
        existing = self.client.get_run(run_id).data.params
        new_params = {k: _shown(v)[:6000] for k, v in params.items() if k not in existing}
        if new_params:
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in new_params.items()])
        self.client.log_text(run_id, mask_secrets(config_yaml), r.CONFIG_ARTIFACT)
        for path, content in texts.items():
            if isinstance(content, str):
                self.client.log_text(run_id, mask_secrets(content), path)
            else:
                self.log_dict(run_id, content, path)

    def log_dataset(self, run_id: str, dataset: dict[str, Any]) -> None:
        """The study's dataset as an MLflow dataset input of a run (the UI's Dataset column):
        name, source, digest (the content key, cut to MLflow's 36 characters) and its counts."""
        import json

        from mlflow.entities import Dataset, DatasetInput, InputTag

        entity = Dataset(
            name=dataset["name"],
            digest=dataset["key"][: r.DATASET_DIGEST_CHARS],
            source_type=dataset["source"],
            source=json.dumps(dataset["location"]),
            profile=json.dumps(dataset["counts"]),
        )
        context = InputTag("mlflow.data.context", "training")
        self.client.log_inputs(run_id, datasets=[DatasetInput(entity, tags=[context])])
        self.dataset = dataset

    def end_study_run(self, status: str) -> None:
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status=status)

    # --- one trial ----------------------------------------------------------------------------
    def start_trial_run(
        self, number: int, params: dict[str, Any], labels: dict[str, Any], config_yaml: str
    ) -> str:
        """A trial's run: `params` (every hyperparameter), `labels` (its searched values)."""
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial_run_name(number, labels),
            tags={
                r.PARENT_RUN_TAG: self.parent_run_id,
                r.ROLE_TAG: r.ROLE_TRIAL,
                r.STUDY_TAG: self.study,
                r.TRIAL_TAG: str(number),
                r.ENGINE_TAG: self.engine,
                r.TRIAL_STATE_TAG: "RUNNING",
                r.FINGERPRINT_TAG: self.fingerprint,
                r.WORKER_TAG: json.dumps(this_worker()),
            },
        )
        run_id = run.info.run_id
        if self.dataset is not None:
            self.log_dataset(run_id, self.dataset)
        values = params | {f"space.{k}": v for k, v in labels.items()}
        self.client.log_batch(run_id, params=[Param(k, _shown(v)) for k, v in values.items()])
        self.client.log_text(run_id, mask_secrets(config_yaml), r.CONFIG_ARTIFACT)
        if self.system_metrics:
            self._monitors[run_id] = TrialSystemMetrics(run_id, self.tracking_uri)
            self._monitors[run_id].start()
        return run_id

    def trial_run_id(self, number: int, engine: str) -> str | None:
        """The finished MLflow run of trial `number` of this study and engine."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{r.ROLE_TAG}` = '{r.ROLE_TRIAL}' and tags.`{r.TRIAL_TAG}` = '{number}' "
                f"and tags.`{r.ENGINE_TAG}` = '{engine}' and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        finite = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in finite.items()])

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, _shown(v)) for k, v in tags.items()])

    def log_figure(self, run_id: str, figure, name: str) -> None:
        self.client.log_figure(
            run_id, figure, name, save_kwargs={"dpi": 110, "bbox_inches": "tight"}
        )

    def log_history(self, run_id: str, history: dict[str, list[float]]) -> None:
        """Per-epoch metrics (steps 1..n) of epochs trained before, e.g. by a killed attempt."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for key, values in history.items()
            for step, value in enumerate(values, start=1)
            if np.isfinite(value)
        ]
        for start in range(0, len(metrics), 900):  # MLflow takes at most 1000 per batch
            self.client.log_batch(run_id, metrics=metrics[start : start + 900])

    def end_trial_run(
        self, run_id: str, state: str, reason: str | None = None, status: str | None = None
    ) -> None:
        """End a trial's run: state is COMPLETE, PRUNED or FAIL (Optuna's words); the run's
        status follows (FINISHED, KILLED, FAILED) unless given."""
        monitor = self._monitors.pop(run_id, None)
        if monitor is not None:
            monitor.finish()
        tags = {r.TRIAL_STATE_TAG: state}
        if reason:
            tags[r.FAIL_REASON_TAG] = reason[:5000]
        self.set_tags(run_id, tags)
        self.client.set_terminated(run_id, status=status or r.RUN_STATUS[state])

    def settle_trial_run(self, run_id: str, state: str, reason: str) -> bool:
        """Make a trial's run agree with its settled trial (`state`): a run a killed worker left
        RUNNING is ended, and a run ended FINISHED whose trial failed (killed between the two
        writes) is marked FAILED. Returns whether the run was changed."""
        try:
            run = self.client.get_run(run_id)
        except mlflow.exceptions.MlflowException:
            return False
        expected = r.RUN_STATUS.get(state)
        if expected is None or run.info.status == expected:
            return False
        if run.info.status not in ("RUNNING", "FINISHED"):
            return False  # KILLED (interrupted on purpose) or FAILED already say why
        self.end_trial_run(run_id, state, reason if state == "FAIL" else None)
        return True

    def open_trial_runs(self) -> dict[str, int]:
        """Trial runs of this study and engine still RUNNING: run id -> trial number."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{r.ROLE_TAG}` = '{r.ROLE_TRIAL}' and tags.`{r.ENGINE_TAG}` = "
                f"'{self.engine}' and attributes.status = 'RUNNING'"
            ),
        )
        return {run.info.run_id: int(run.data.tags[r.TRIAL_TAG]) for run in runs}

    def run_worker(self, run_id: str) -> dict | None:
        """The worker a trial's run recorded (`experiments.liveness`), or None."""
        try:
            return json.loads(self.client.get_run(run_id).data.tags.get(r.WORKER_TAG, "null"))
        except ValueError:
            return None

    def close_open_trial_runs(self, reason: str) -> dict[str, dict]:
        """End every trial run of this engine still RUNNING whose worker is gone (one-process
        engines, at start); a run of a process still alive on this host is left as it is.
        Returns the runs left open: run id -> their worker."""
        alive = {}
        for run_id in self.open_trial_runs():
            worker = self.run_worker(run_id)
            if judge(worker) is Liveness.ALIVE:
                alive[run_id] = worker
                continue
            self.end_trial_run(run_id, "FAIL", reason)
        return alive

    # --- a Pareto front: trial tags and registered model versions ---------------------------
    def mark_trial_runs(self, tag: str, chosen: set[str]) -> None:
        """Tag every finished trial run of this study and engine: "true" on the `chosen` run
        ids, "false" on the others (a trial that left the front loses its mark)."""
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{r.ROLE_TAG}` = '{r.ROLE_TRIAL}' and tags.`{r.ENGINE_TAG}` = "
                f"'{self.engine}' and attributes.status = 'FINISHED'"
            ),
            max_results=50_000,
        )
        for run in runs:
            value = str(run.info.run_id in chosen).lower()
            if run.data.tags.get(tag) != value:
                self.set_tags(run.info.run_id, {tag: value})

    def model_version_of(self, registered: str, run_id: str) -> str | None:
        """The newest version (as text) of registered model `registered` made from run
        `run_id`."""
        versions = self.client.search_model_versions(
            f"name = '{registered}' and run_id = '{run_id}'"
        )
        return max((str(v.version) for v in versions), key=int, default=None)

    def latest_model_version(self, registered: str) -> str | None:
        """The version `models:/<registered>/latest` resolves to."""
        versions = self.client.search_model_versions(f"name = '{registered}'")
        return max((str(v.version) for v in versions), key=int, default=None)

    def copy_model_version(self, registered: str, version: str) -> str:
        """A new version of `registered` holding the same model as `version` (no re-upload);
        returns its number."""
        found = self.client.get_model_version(registered, version)
        return str(
            self.client.create_model_version(
                registered, found.source, run_id=found.run_id, model_id=found.model_id
            ).version
        )

    def model_aliases(self, registered: str) -> dict[str, str]:
        """The aliases of registered model `registered`: alias -> version (as text)."""
        aliases = self.client.get_registered_model(registered).aliases
        return {alias: str(version) for alias, version in aliases.items()}

    def set_model_aliases(
        self, registered: str, aliases: dict[str, str], drop: set[str] = frozenset()
    ) -> None:
        """Point each alias at its version, and remove the aliases in `drop`."""
        for alias, version in aliases.items():
            self.client.set_registered_model_alias(registered, alias, version)
        for alias in drop:
            self.client.delete_registered_model_alias(registered, alias)


def _system_metrics_monitor():
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    return SystemMetricsMonitor


class TrialSystemMetrics:
    """MLflow's system metrics of one trial's run, sampled on a thread while the trial runs.

    A trial may last two seconds (smoke) or hours, so samples come early and then spread out:
    after 1 s, then at doubling intervals up to `max_interval` seconds (10, MLflow's default;
    `MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL` sets it). `finish` logs a last sample, so every
    trial's run holds at least one. Failures are logged, never raised: figures are not results.
    """

    def __init__(self, run_id: str, tracking_uri: str, max_interval: float = 10.0):
        import logging
        import threading

        # MLflow says at INFO, on every trial, that a machine without a GPU has no GPU figures
        logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)
        self.run_id = run_id
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        try:
            self._monitor = _system_metrics_monitor()(
                run_id, max_interval, tracking_uri=tracking_uri
            )
        except Exception as error:  # e.g. psutil missing: the trial runs on without figures
            import logging

            logging.getLogger(__name__).warning("no system metrics: %s", _first_line(error))
            self._monitor = None
            return
        self.max_interval = float(self._monitor.sampling_interval)
        self._monitor.collect_metrics()  # psutil's CPU figure counts from its previous call:
        for part in self._monitor.monitors:  # this first one is discarded
            part.clear_metrics()

    def start(self) -> None:
        import threading

        if self._monitor is None:
            return
        self._thread = threading.Thread(target=self._loop, daemon=True, name="TrialSystemMetrics")
        self._thread.start()

    def _sample(self) -> None:
        with self._lock:
            monitor = self._monitor
            monitor.collect_metrics()
            monitor.publish_metrics(monitor.aggregate_metrics())

    def _loop(self) -> None:
        wait = min(1.0, self.max_interval)
        while not self._stop.wait(wait):
            try:
                self._sample()
            except Exception as error:
                import logging

                logging.getLogger(__name__).warning("system metrics: %s", _first_line(error))
                return
            wait = min(wait * 2, self.max_interval)

    def finish(self) -> None:
        """Stop sampling, log a last sample and flush what is buffered."""
        if self._monitor is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self._sample()
            self._monitor.mlflow_logger.flush()
        except Exception as error:
            import logging

            logging.getLogger(__name__).warning("system metrics: %s", _first_line(error))
        self._monitor = None
