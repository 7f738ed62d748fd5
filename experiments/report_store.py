"""Reading a finished (or half-finished) study back from its stores, for the report.

Everything comes from what `experiments.run` stored: the MLflow experiment named after the study
(a parent run per engine and a child run per trial, with params, per-epoch metric histories, final
metrics, tags and artifacts) and, for the Optuna engine, the Optuna study of the same name. Nothing
is taken from memory, so a report can be rebuilt at any time.

This module imports neither Keras nor TensorFlow: building a report needs no deep-learning stack,
and a user mistake must come back as one line, not after a page of TensorFlow start-up logging.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.errors import UsageError
from experiments.stores import (  # noqa: F401  (re-exported for the report)
    ENGINE_TAG,
    ROLE_TAG,
    STUDY_TAG,
    TRIAL_TAG,
    default_storage,
    default_tracking_uri,
)

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
STATUS_TO_STATE = {"FINISHED": "COMPLETE", "KILLED": "PRUNED", "FAILED": "FAIL"}
HISTORY_KEYS = ("loss", "val_loss", "accuracy", "val_accuracy")
FINAL_METRICS = (
    "best_val_loss",
    "best_val_accuracy",
    "final_accuracy",
    "psnr",
    "ssim",
    "delta_e2000",
    "ab_auc",
    "colorfulness_pred",
    "colorfulness_true",
    "best_epoch",
    "epochs_run",
    "num_params",
)
# Trial params shown as the study's fixed settings when every trial shares them.
SETTING_PARAMS = (
    "optimizer",
    "learning_rate",
    "batch_size",
    "epochs",
    "patience",
    "seed",
    "architecture",
    "kernel_size",
    "padding",
    "strides",
    "l_scaling",
    "crops_per_photo",
)


def sqlite_path(url: str) -> Path | None:
    """The file behind a `sqlite:///...` URL, or None for any other kind of URL."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])


def quiet_libraries() -> None:
    """MLflow (alembic) and Optuna log at INFO when they open a store; the report needs none."""
    for name in ("mlflow", "alembic", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="optuna")
    warnings.filterwarnings("ignore", module="mlflow")


def parse_value(text: Any) -> Any:
    """An MLflow param (always a string) back to int, float, bool or str."""
    if not isinstance(text, str):
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return {"True": True, "False": False}.get(text, text)


@dataclass
class StoredStudy:
    """One study of one engine, as its stores hold it.

    Attributes:
        trials: one row per trial (latest run per trial number); columns: number, run_id, state,
            fail_reason, start, seconds, `space.<name>` (the study's values), the trial's params,
            its final metrics, early_stopped, early_stopped_epoch and, from the per-epoch history,
            train_accuracy (at the epoch of lowest validation loss), last_val_loss, lowest_val_loss.
        histories: trial number -> per-epoch frame (index: 1-based epoch; loss, val_loss,
            accuracy, val_accuracy).
        space: the study's search-space names, as the trials recorded them.
    """

    name: str
    engine: str
    tracking_uri: str
    storage_url: str | None
    parent: dict[str, Any]
    trials: pd.DataFrame
    histories: dict[int, pd.DataFrame]
    space: list[str]
    optuna_study: Any = None
    notes: list[str] = field(default_factory=list)
    retried: int = 0

    @property
    def params(self) -> dict[str, str]:
        return self.parent["params"]

    @property
    def tags(self) -> dict[str, str]:
        return self.parent["tags"]

    def count(self, state: str) -> int:
        return int((self.trials["state"] == state).sum()) if len(self.trials) else 0

    @property
    def settled(self) -> int:
        """Trials that ended (finished, pruned or failed)."""
        return sum(self.count(state) for state in ("COMPLETE", "PRUNED", "FAIL"))

    @property
    def total(self) -> int:
        """Trials the study was to run in all: the recorded budget (a tag, where a resumed run
        updated it, else the first run's param), never fewer than the trials on record."""
        recorded = parse_value(
            self.tags.get("study.total_trials", self.params.get("total_trials"))
        )
        on_record = len(self.trials)
        return max(recorded, on_record) if isinstance(recorded, int) else on_record

    @property
    def is_partial(self) -> bool:
        return self.settled < self.total

    def completeness(self) -> str:
        """'complete: N of N trials' or 'partial: N of M trials'."""
        kind = "partial" if self.is_partial else "complete"
        return f"{kind}: {self.settled} of {self.total} trials"

    def complete_trials(self) -> pd.DataFrame:
        return self.trials[self.trials["state"] == "COMPLETE"]


def resolve_tracking_uri(runs_dir: str, tracking_uri: str | None) -> str:
    """The MLflow URI to read; a missing runs_dir or sqlite file is a UsageError (never created)."""
    if tracking_uri:
        path = sqlite_path(tracking_uri)
        if path is not None and not path.is_file():
            raise UsageError(f"tracking_uri {tracking_uri}: no MLflow store at {path}")
        return tracking_uri
    folder = Path(runs_dir).expanduser()
    if not folder.is_dir():
        raise UsageError(
            f"runs_dir {runs_dir} does not exist; run `python -m experiments.run study=NAME "
            f"runs_dir={runs_dir}` first, or pass the runs_dir it used"
        )
    uri = default_tracking_uri(folder)
    if not sqlite_path(uri).is_file():
        raise UsageError(f"runs_dir {runs_dir} holds no MLflow store (no mlflow.db)")
    return uri


def _client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _search_all(client, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _experiment(client, tracking_uri: str, study: str):
    try:
        experiment = client.get_experiment_by_name(study)
    except Exception as error:  # unreachable server, broken database: several types
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise UsageError(f"tracking_uri {tracking_uri} cannot be read: {first[:200]}") from None
    if experiment is None:
        raise UsageError(
            f"study {study!r} has no runs in {tracking_uri}; run "
            f"`python -m experiments.run study={study}` with the same runs_dir first"
        )
    return experiment


def _parent_run(client, experiment_id: str, study: str, engine: str):
    parents = _search_all(client, experiment_id, f"tags.`{ROLE_TAG}` = 'study'")
    mine = [run for run in parents if run.data.tags.get(ENGINE_TAG) == engine]
    if not mine:
        others = sorted({run.data.tags.get(ENGINE_TAG, "?") for run in parents})
        hint = f"; it has runs of tuner={', '.join(others)}" if others else ""
        raise UsageError(f"study {study!r} has no tuner={engine} runs in this store{hint}")
    return max(mine, key=lambda run: run.info.start_time or 0)


def _history(client, run_id: str) -> pd.DataFrame:
    columns = {}
    for key in HISTORY_KEYS:
        points = client.get_metric_history(run_id, key)
        columns[key] = pd.Series(
            {int(p.step): float(p.value) for p in sorted(points, key=lambda p: p.timestamp)},
            dtype=float,
        )
    frame = pd.DataFrame(columns)
    frame.index.name = "epoch"
    return frame.sort_index()


def _trial_row(run, history: pd.DataFrame) -> dict[str, Any]:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    state = tags.get("trial.state") or STATUS_TO_STATE.get(run.info.status, "RUNNING")
    start, end = run.info.start_time, run.info.end_time
    row: dict[str, Any] = {
        "number": int(tags[TRIAL_TAG]),
        "run_id": run.info.run_id,
        "state": state,
        "fail_reason": tags.get("trial.fail_reason", "") if state == "FAIL" else "",
        "start": start,
        "seconds": round((end - start) / 1000, 1) if start and end else math.nan,
    }
    row.update({key: parse_value(value) for key, value in params.items()})
    for key in FINAL_METRICS:
        row[key] = metrics.get(key, math.nan)
    early = tags.get("early_stopped")
    row["early_stopped"] = {"True": True, "False": False}.get(early)
    stopped_at = parse_value(tags.get("early_stopped_epoch", ""))
    row["early_stopped_epoch"] = stopped_at if isinstance(stopped_at, int) else math.nan
    val_loss = history["val_loss"].dropna() if "val_loss" in history else pd.Series(dtype=float)
    row["epochs_logged"] = len(val_loss)
    row["lowest_val_loss"] = float(val_loss.min()) if len(val_loss) else math.nan
    row["last_val_loss"] = float(val_loss.iloc[-1]) if len(val_loss) else math.nan
    if math.isnan(row["best_epoch"]) and len(val_loss):  # pruned trials log no final metrics
        row["best_epoch"] = float(val_loss.idxmin())
    if math.isnan(row["best_val_loss"]):
        row["best_val_loss"] = row["lowest_val_loss"]
    best = row["best_epoch"]
    accuracy = history["accuracy"] if "accuracy" in history else pd.Series(dtype=float)
    val_accuracy = history["val_accuracy"] if "val_accuracy" in history else accuracy[:0]
    row["train_accuracy"] = (
        float(accuracy.get(int(best), math.nan)) if not math.isnan(best) else math.nan
    )
    if math.isnan(row["best_val_accuracy"]) and not math.isnan(best):
        row["best_val_accuracy"] = float(val_accuracy.get(int(best), math.nan))
    return row


def _retried_numbers(optuna_study) -> set[int]:
    """Optuna trials that failed because they were killed and were run again under a new number."""
    if optuna_study is None:
        return set()
    trials = optuna_study.get_trials(deepcopy=False)
    return {t.system_attrs.get("failed_trial") for t in trials} - {None}


def _open_optuna(study: str, candidates: list[str]) -> tuple[Any, str | None, str | None]:
    """(study, url, None) from the first candidate storage that holds it, else (None, None, why)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    why = "no Optuna storage found"
    for url in candidates:
        path = sqlite_path(url)
        if path is not None and not path.is_file():
            why = f"no Optuna storage at {path}"
            continue
        try:
            return optuna.load_study(study_name=study, storage=url), url, None
        except KeyError:
            why = f"Optuna storage {url} has no study {study!r}"
        except Exception as error:  # bad URL, unreachable server, missing driver
            first = (str(error).splitlines() or [type(error).__name__])[0]
            why = f"Optuna storage {url} cannot be read: {first[:200]}"
    return None, None, why


def load_study_records(
    study: str,
    runs_dir: str,
    tracking_uri: str | None = None,
    engine: str = "optuna",
    storage: str | None = None,
) -> StoredStudy:
    """Read study `study` of engine `engine` from its MLflow store (and Optuna storage).

    Args:
        study: the study's name (its MLflow experiment and Optuna study are named so).
        runs_dir: the folder `experiments.run` wrote to (default stores live there).
        tracking_uri: MLflow URI; None: `sqlite:///<runs_dir>/mlflow.db`.
        engine: `optuna` or `keras_tuner`: which engine's runs to read.
        storage: Optuna storage URL; None: `<runs_dir>/optuna.db`, else the one the run recorded.

    Raises:
        UsageError: missing store, unknown study, no runs of that engine, no finished trial.
    """
    quiet_libraries()
    uri = resolve_tracking_uri(runs_dir, tracking_uri)
    client = _client(uri)
    experiment = _experiment(client, uri, study)
    parent = _parent_run(client, experiment.experiment_id, study, engine)
    parent_info = {
        "run_id": parent.info.run_id,
        "status": parent.info.status,
        "start": parent.info.start_time,
        "end": parent.info.end_time,
        "params": dict(parent.data.params),
        "tags": dict(parent.data.tags),
    }
    runs = _search_all(
        client,
        experiment.experiment_id,
        f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' and tags.`{ROLE_TAG}` = 'trial'",
    )
    latest = {}
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        latest[int(run.data.tags[TRIAL_TAG])] = run  # a rerun trial number: keep the last run

    notes: list[str] = []
    optuna_study, storage_url = None, None
    if engine == "optuna":
        candidates = [storage] if storage else []
        if not storage:
            folder = Path(runs_dir).expanduser()
            candidates.append(default_storage(folder))
            recorded = parent_info["params"].get("storage")
            if recorded and recorded not in candidates:
                candidates.append(recorded)
        optuna_study, storage_url, why = _open_optuna(study, candidates)
        if storage and optuna_study is None:
            raise UsageError(f"storage {storage}: {why}")
        if why:
            notes.append(f"Optuna figures left out: {why}.")
    retried = _retried_numbers(optuna_study) & set(latest)

    histories, rows = {}, []
    for number, run in sorted(latest.items()):
        if number in retried:
            continue
        history = _history(client, run.info.run_id)
        histories[number] = history
        rows.append(_trial_row(run, history))
    trials = pd.DataFrame(rows)
    space = sorted(
        {key.removeprefix("space.") for key in trials.columns if key.startswith("space.")}
    )
    stored = StoredStudy(
        name=study,
        engine=engine,
        tracking_uri=uri,
        storage_url=storage_url,
        parent=parent_info,
        trials=trials,
        histories=histories,
        space=space,
        optuna_study=optuna_study,
        notes=notes,
        retried=len(retried),
    )
    if stored.count("COMPLETE") == 0:
        words = {
            "COMPLETE": "finished",
            "PRUNED": "pruned",
            "FAIL": "failed",
            "RUNNING": "unfinished",
        }
        counts = ", ".join(f"{stored.count(s)} {words[s]}" for s in STATES if stored.count(s))
        raise UsageError(
            f"study {study!r} (tuner={engine}) has no finished trials"
            f"{f' ({counts})' if counts else ''}; nothing to report"
        )
    return stored


def download_artifact(stored: StoredStudy, run_id: str, path: str, dst: Path) -> Path | None:
    """A run's artifact downloaded into `dst`, or None when the store no longer has it."""
    dst.mkdir(parents=True, exist_ok=True)
    try:
        return Path(_client(stored.tracking_uri).download_artifacts(run_id, path, str(dst)))
    except Exception:  # moved or deleted artifact folder: the report says so instead
        return None
