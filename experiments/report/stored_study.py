"""Reading a finished (or half-finished) study back from its stores, for the report.

Everything comes from what `experiments.run` stored: the MLflow experiment named after the study
(a parent run per engine and a child run per trial, with params, per-epoch metric histories, final
metrics, tags and artifacts) and, for the Optuna engine, the Optuna study of the same name. Nothing
is taken from memory, so a report can be rebuilt at any time. A study whose trials ran with
different settings (two fingerprints, or a setting that differs between trials outside its search
space) is refused: one report never mixes them.

This package imports neither Keras nor TensorFlow: building a report needs no deep-learning stack,
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

from experiments.common import records as r
from experiments.common.errors import UsageError
from experiments.common.redact import connectable
from experiments.settings.config import result_setting_leaves
from experiments.stores.store_urls import (
    check_sqlite,
    default_storage,
    default_tracking_uri,
    sqlite_path,
)

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
STATUS_TO_STATE = {"FINISHED": "COMPLETE", "KILLED": "PRUNED", "FAILED": "FAIL"}
HISTORY_KEYS = ("loss", "val_loss", "accuracy", "val_accuracy")
# Trial params shown as the study's fixed settings (the schema's result settings); one value
# each across a study's trials.
SETTING_PARAMS = result_setting_leaves()


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

    @property
    def objectives(self) -> list[tuple[str, str]]:
        """(metric, direction) of each objective the study optimized (one for most studies;
        a study run before objectives had a param has its metric and direction)."""
        stored = r.parse_objectives(self.params.get("objectives", ""))
        return stored or [
            (self.params.get("metric", "val_loss"), self.params.get("direction", "minimize"))
        ]

    @property
    def is_multi(self) -> bool:
        """Several objectives: the study searched their Pareto front."""
        return len(self.objectives) > 1

    @property
    def definition(self) -> str:
        """The study YAML it ran (its name, unless it was stored under `name=`)."""
        return self.tags.get(r.DEFINITION_TAG) or self.params.get("definition") or self.name

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
        recorded = parse_value(self.tags.get(r.TOTAL_TRIALS_TAG, self.params.get("total_trials")))
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
        check_sqlite(tracking_uri, "MLflow store")
        from experiments.stores.store_urls import check_reachable

        check_reachable(tracking_uri, "tracking_uri")  # a server: at once, not after retries
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
    check_sqlite(uri, "MLflow store")
    return uri


def client(tracking_uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _search_all(mlflow_client, experiment_id: str, filter_string: str) -> list:
    runs, token = [], None
    while True:
        page = mlflow_client.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _experiment(mlflow_client, tracking_uri: str, study: str):
    try:
        experiment = mlflow_client.get_experiment_by_name(study)
    except Exception as error:  # unreachable server, broken database: several types
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise UsageError(f"tracking_uri {tracking_uri} cannot be read: {first[:200]}") from None
    if experiment is None:
        raise UsageError(
            f"study {study!r} has no runs in {tracking_uri}; run "
            f"`python -m experiments.run study={study}` with the same runs_dir first"
        )
    return experiment


def _parent_run(mlflow_client, experiment_id: str, study: str, engine: str):
    parents = _search_all(mlflow_client, experiment_id, f"tags.`{r.ROLE_TAG}` = '{r.ROLE_STUDY}'")
    mine = [run for run in parents if run.data.tags.get(r.ENGINE_TAG) == engine]
    if not mine:
        others = sorted({run.data.tags.get(r.ENGINE_TAG, "?") for run in parents})
        hint = f"; it has runs of engine={', '.join(others)}" if others else ""
        raise UsageError(f"study {study!r} has no engine={engine} runs in this store{hint}")
    return max(mine, key=lambda run: run.info.start_time or 0)


def _history(mlflow_client, run_id: str) -> pd.DataFrame:
    columns = {}
    for key in HISTORY_KEYS:
        points = mlflow_client.get_metric_history(run_id, key)
        columns[key] = pd.Series(
            {int(p.step): float(p.value) for p in sorted(points, key=lambda p: p.timestamp)},
            dtype=float,
        )
    frame = pd.DataFrame(columns)
    frame.index.name = "epoch"
    return frame.sort_index()


def _seconds(run) -> float:
    """The trial's own wall time (its tag), else its run's start to end."""
    tagged = parse_value(run.data.tags.get(r.TRIAL_SECONDS_TAG, ""))
    if isinstance(tagged, int | float):
        return float(tagged)
    start, end = run.info.start_time, run.info.end_time
    return round((end - start) / 1000, 1) if start and end else math.nan


def _trial_row(run, history: pd.DataFrame) -> dict[str, Any]:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    state = tags.get(r.TRIAL_STATE_TAG) or STATUS_TO_STATE.get(run.info.status, "RUNNING")
    row: dict[str, Any] = {
        "number": int(tags[r.TRIAL_TAG]),
        "run_id": run.info.run_id,
        "state": state,
        "fail_reason": tags.get(r.FAIL_REASON_TAG, "") if state == "FAIL" else "",
        "start": run.info.start_time,
        "seconds": _seconds(run),
        "fingerprint": tags.get(r.FINGERPRINT_TAG, ""),
    }
    row.update({key: parse_value(value) for key, value in params.items()})
    for key in r.TRIAL_METRICS:
        row[key] = metrics.get(key, math.nan)
    row["early_stopped"] = {"True": True, "False": False}.get(tags.get(r.EARLY_STOPPED_TAG))
    stopped_at = parse_value(tags.get(r.EARLY_STOPPED_EPOCH_TAG, ""))
    row["early_stopped_epoch"] = stopped_at if isinstance(stopped_at, int) else math.nan
    val_loss = history["val_loss"].dropna()
    row["epochs_logged"] = len(val_loss)
    row["lowest_val_loss"] = float(val_loss.min()) if len(val_loss) else math.nan
    row["last_val_loss"] = float(val_loss.iloc[-1]) if len(val_loss) else math.nan
    if math.isnan(row["best_epoch"]) and len(val_loss):  # pruned trials log no final metrics
        row["best_epoch"] = float(val_loss.idxmin())
    if math.isnan(row["best_val_loss"]):
        row["best_val_loss"] = row["lowest_val_loss"]
    best = row["best_epoch"]
    at_best = int(best) if not math.isnan(best) else None
    row["train_accuracy"] = float(history["accuracy"].get(at_best, math.nan))
    if math.isnan(row["best_val_accuracy"]):
        row["best_val_accuracy"] = float(history["val_accuracy"].get(at_best, math.nan))
    return row


def check_one_configuration(study: str, trials: pd.DataFrame, space: list[str]) -> None:
    """Refuse trials of different settings: two fingerprints, or a setting outside the search
    space that differs between trials (stores made before fingerprints existed)."""
    prints = sorted({p for p in trials.get("fingerprint", pd.Series(dtype=str)) if p})
    problems = []
    if len(prints) > 1:
        problems.append(f"{len(prints)} fingerprints ({', '.join(prints)})")
    for name in SETTING_PARAMS:
        if name in trials and name not in space:
            found = sorted(trials[name].dropna().astype(str).unique())
            if len(found) > 1:
                problems.append(f"{name} {' vs '.join(found)}")
    if problems:
        raise UsageError(
            f"study {study!r} holds trials of different settings ({'; '.join(problems)}); a "
            "report never mixes them: rerun each setting as its own study with name=..."
        )


def _retried_numbers(optuna_study) -> set[int]:
    """Optuna trials that failed because they were killed and were run again under a new number."""
    if optuna_study is None:
        return set()
    from experiments.engines.optuna_trials import retried_numbers

    return retried_numbers(optuna_study.get_trials(deepcopy=False))


def _open_optuna(study: str, candidates: list[str]) -> tuple[Any, str | None, str | None]:
    """(study, url, None) from the first candidate storage that holds it, else (None, None, why)."""
    import optuna

    from experiments.stores.store_urls import journal_path, open_optuna_storage

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    why = "no Optuna storage found"
    for url in candidates:
        path = sqlite_path(url) or journal_path(url)
        if path is not None and not path.is_file():
            why = f"no Optuna storage at {path}"
            continue
        try:
            return optuna.load_study(study_name=study, storage=open_optuna_storage(url)), url, None
        except KeyError:
            why = f"Optuna storage {url} has no study {study!r}"
        except Exception as error:  # bad URL, unreachable server, missing driver, damage
            first = (str(error).splitlines() or [type(error).__name__])[0]
            why = f"Optuna storage {url} cannot be read: {first[:200]}"
    return None, None, why


def _optuna_side(
    study: str, runs_dir: str, storage: str | None, parent_info: dict, notes: list[str]
) -> tuple[Any, str | None]:
    """The study's Optuna study and storage URL: the given storage, else the default one or
    the one its run recorded; where none holds it, (None, None) and a note says why.

    Raises:
        UsageError: a given `storage` that does not hold the study.
    """
    candidates = [storage] if storage else [default_storage(Path(runs_dir).expanduser())]
    recorded = parent_info["params"].get("storage")
    if not storage and recorded and recorded not in candidates:
        candidates.append(connectable(recorded))  # a masked password: PGPASSWORD gives it
    optuna_study, storage_url, why = _open_optuna(study, candidates)
    if storage and optuna_study is None:
        raise UsageError(f"storage {storage}: {why}")
    if why:
        notes.append(f"Optuna figures left out: {why}.")
    return optuna_study, storage_url


def load_study_records(
    study: str,
    runs_dir: str,
    tracking_uri: str | None = None,
    engine: str = "optuna",
    storage: str | None = None,
) -> StoredStudy:
    """Read study `study` (its stored name) of engine `engine` from its stores.

    Raises:
        UsageError: missing or damaged store, unknown study, no runs of that engine, no finished
            trial, or trials of different settings.
    """
    quiet_libraries()
    uri = resolve_tracking_uri(runs_dir, tracking_uri)
    mlflow_client = client(uri)
    experiment = _experiment(mlflow_client, uri, study)
    parent = _parent_run(mlflow_client, experiment.experiment_id, study, engine)
    parent_info = {
        "run_id": parent.info.run_id,
        "experiment_id": experiment.experiment_id,
        "status": parent.info.status,
        "start": parent.info.start_time,
        "end": parent.info.end_time,
        "params": dict(parent.data.params),
        "tags": dict(parent.data.tags),
    }
    runs = _search_all(
        mlflow_client,
        experiment.experiment_id,
        f"tags.`{r.PARENT_RUN_TAG}` = '{parent.info.run_id}' and tags.`{r.ROLE_TAG}` = "
        f"'{r.ROLE_TRIAL}'",
    )
    latest = {}
    for run in sorted(runs, key=lambda run: run.info.start_time or 0):
        latest[int(run.data.tags[r.TRIAL_TAG])] = run  # a rerun trial number: keep the last run

    notes: list[str] = []
    optuna_study, storage_url = None, None
    if engine == "optuna":
        optuna_study, storage_url = _optuna_side(study, runs_dir, storage, parent_info, notes)
    retried = _retried_numbers(optuna_study) & set(latest)
    histories, rows = {}, []
    for number, run in sorted(latest.items()):
        if number in retried:
            continue
        histories[number] = _history(mlflow_client, run.info.run_id)
        rows.append(_trial_row(run, histories[number]))
    trials = pd.DataFrame(rows)
    space = sorted({k.removeprefix("space.") for k in trials.columns if k.startswith("space.")})
    check_one_configuration(study, trials, space)
    stored = StoredStudy(
        study, engine, uri, storage_url, parent_info, trials, histories, space, optuna_study,
        notes, len(retried),
    )  # fmt: skip
    if stored.count("COMPLETE") == 0:
        words = {
            "COMPLETE": "finished",
            "PRUNED": "pruned",
            "FAIL": "failed",
            "RUNNING": "unfinished",
        }
        counts = ", ".join(f"{stored.count(s)} {words[s]}" for s in STATES if stored.count(s))
        raise UsageError(
            f"study {study!r} (engine={engine}) has no finished trials"
            f"{f' ({counts})' if counts else ''}; nothing to report"
        )
    return stored


def download_artifact(stored: StoredStudy, run_id: str, path: str, dst: Path) -> Path | None:
    """A run's artifact downloaded into `dst`, or None when the store no longer has it."""
    dst.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client(stored.tracking_uri).download_artifacts(run_id, path, str(dst)))
    except Exception:  # moved or deleted artifact folder: the report says so instead
        return None
