"""The Optuna engine: a study in RDB storage (SQLite under runs_dir by default), resumable, with
heartbeats so a killed trial is failed and retried with the same parameters."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from experiments.errors import UsageError
from experiments.objective import TrialFailed, TrialRunner
from experiments.space import StudySpec, make_pruner, make_sampler, suggest

HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 30
SETTLED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)


def default_storage(runs_dir: str | Path) -> str:
    return f"sqlite:///{Path(runs_dir).resolve() / 'optuna.db'}"


def open_study(storage_url: str, spec: StudySpec) -> optuna.Study:
    """Create the study once (or load it), with heartbeat-based retry of killed trials."""
    try:
        storage = optuna.storages.RDBStorage(
            storage_url,
            heartbeat_interval=HEARTBEAT_SECONDS,
            grace_period=GRACE_SECONDS,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=3
            ),
        )
        return optuna.create_study(
            study_name=spec.name,
            storage=storage,
            load_if_exists=True,
            sampler=make_sampler(spec),
            pruner=make_pruner(spec),
            direction=spec.direction,
        )
    except Exception as error:  # bad URL, unreachable server, missing driver
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"storage {storage_url} cannot be opened: {first[:300]}") from None


def settled_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished trials that count towards the budget (a failed trial that was retried does not)."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials} - {None}
    return [t for t in trials if t.state in SETTLED and t.number not in retried]


def remaining_trials(study: optuna.Study, spec: StudySpec, total: int) -> int:
    trials = study.get_trials(deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    if spec.is_grid and study.sampler.is_exhausted(study) and not waiting:
        return 0
    return max(0, total - len(settled_trials(study)) - running)


def run_study(
    study: optuna.Study,
    spec: StudySpec,
    runner: TrialRunner,
    total: int,
    on_trial_end: Callable[[optuna.trial.FrozenTrial], None],
) -> None:
    """Run trials until the study's total is reached (across restarts)."""

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, spec)
        callbacks = []
        if spec.pruner["type"] != "none":
            from optuna_integration import KerasPruningCallback

            callbacks.append(KerasPruningCallback(trial, spec.metric))
        try:
            record = runner.run(
                trial.number,
                params,
                callbacks,
                on_run_started=lambda run_id: trial.set_user_attr("mlflow_run_id", run_id),
                on_pruned=optuna.TrialPruned,
            )
        except TrialFailed as error:
            trial.set_user_attr("fail_reason", str(error))
            raise
        for key, value in record.tags.items():
            trial.set_user_attr(key, value)
        return record.value

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        on_trial_end(trial)

    logging.getLogger("optuna").setLevel(logging.ERROR)
    while remaining_trials(study, spec, total) > 0:
        study.optimize(objective, n_trials=1, catch=(TrialFailed,), callbacks=[after])
