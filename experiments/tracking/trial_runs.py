"""A child run per trial: its params, per-epoch curves, final metrics and tags, and its status
kept in step with the trial (settled where a killed worker left it open)."""

from __future__ import annotations

import json
import time
from typing import Any

import mlflow
import numpy as np
from mlflow.entities import Metric, Param

from experiments.common import records as r
from experiments.common.redact import mask_secrets
from experiments.stores.liveness import Liveness, judge, this_worker
from experiments.tracking.system_metrics import TrialSystemMetrics
from experiments.tracking.values import TrackerState, shown


def _label(name: str, value: Any) -> str:
    if name == "optimizer":
        return str(value)
    return f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"


def trial_run_name(number: int, params: dict[str, Any]) -> str:
    """'trial-003 adam seed=1': the trial number and its searched values, readable in a list."""
    return " ".join([f"trial-{number:03d}", *(_label(k, v) for k, v in params.items())])


class TrialRunRecords(TrackerState):
    """The trials' runs of one study; part of `Tracker`."""

    system_metrics: bool
    dataset: dict[str, Any] | None
    _monitors: dict[str, TrialSystemMetrics]

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
        self.client.log_batch(run_id, params=[Param(k, shown(v)) for k, v in values.items()])
        self.client.log_text(run_id, mask_secrets(config_yaml), r.CONFIG_ARTIFACT)
        if self.system_metrics:
            self._monitors[run_id] = TrialSystemMetrics(run_id, self.tracking_uri)
            self._monitors[run_id].start()
        return run_id

    def _finished_trial_runs(self, engine: str, max_results: int, number: int | None = None):
        """The finished trial runs of this study and `engine` (of trial `number` alone, if
        given)."""
        trial = f" and tags.`{r.TRIAL_TAG}` = '{number}'" if number is not None else ""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=(
                f"tags.`{r.ROLE_TAG}` = '{r.ROLE_TRIAL}'{trial} and tags.`{r.ENGINE_TAG}` = "
                f"'{engine}' and attributes.status = 'FINISHED'"
            ),
            max_results=max_results,
        )

    def trial_run_id(self, number: int, engine: str) -> str | None:
        """The finished MLflow run of trial `number` of this study and engine."""
        runs = self._finished_trial_runs(engine, 1, number)
        return runs[0].info.run_id if runs else None

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
        """The worker a trial's run recorded (`experiments.stores.liveness`), or None."""
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

    def mark_trial_runs(self, tag: str, chosen: set[str]) -> None:
        """Tag every finished trial run of this study and engine: "true" on the `chosen` run
        ids, "false" on the others (a trial that left the front loses its mark)."""
        for run in self._finished_trial_runs(self.engine, 50_000):
            value = str(run.info.run_id in chosen).lower()
            if run.data.tags.get(tag) != value:
                self.set_tags(run.info.run_id, {tag: value})
