"""The Optuna engine: a study in RDB storage (SQLite under runs_dir by default), resumable, with
heartbeats so a killed trial is failed and retried with the same parameters."""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from experiments.errors import UsageError
from experiments.objective import TrialFailed, TrialRunner
from experiments.space import StudySpec, make_pruner, make_sampler, suggest

MAX_RETRY = 3
SETTLED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)


class SurplusTrial(Exception):
    """A trial asked for after the grid was complete; recorded as failed and not counted."""


def open_study(storage_url: str, spec: StudySpec, heartbeat: int = 10) -> optuna.Study:
    """Create the study once (or load it), with heartbeat-based retry of killed trials.

    A worker beats every `heartbeat` seconds; a RUNNING trial silent for 3 beats is failed and
    retried with the same parameters (up to MAX_RETRY times). A grid study has all its points
    enqueued once, so concurrent workers each take a different point.
    """
    engine_kwargs = {}
    if storage_url.startswith("sqlite"):
        # Several workers share one SQLite file: wait for its lock instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    try:
        storage = optuna.storages.RDBStorage(
            storage_url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat,
            grace_period=3 * heartbeat,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            ),
        )
        study = optuna.create_study(
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
    if spec.is_grid and not study.user_attrs.get("grid_enqueued"):
        study.set_user_attr("grid_enqueued", True)
        names = list(spec.grid())
        for values in itertools.product(*spec.grid().values()):
            study.enqueue_trial(dict(zip(names, values, strict=True)), skip_if_exists=True)
    return study


def recover(study: optuna.Study, close_run: Callable[[str, str], None]) -> None:
    """Start-up reconciliation: fail trials whose worker stopped beating (they are retried),
    retry trials that were interrupted on purpose, and close their MLflow runs."""
    optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials} - {None}
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
    for trial in trials:
        interrupted = trial.user_attrs.get("interrupted")
        if trial.state == TrialState.FAIL and interrupted and trial.number not in retried:
            retry(study, trial)
    for trial in study.get_trials(deepcopy=False):
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id and trial.state != TrialState.RUNNING:
            close_run(run_id, f"its worker stopped during trial {trial.number}")


def is_surplus(trial: optuna.Trial, spec: StudySpec) -> bool:
    """A grid study's trial that is not one of its enqueued points (or a retry of one): the
    grid was finished by other workers between our check and our ask."""
    if not spec.is_grid:
        return False
    frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
    system = frozen.system_attrs
    return spec.is_grid and "fixed_params" not in system and "failed_trial" not in system


def settled_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished trials that count towards the budget (a failed trial that was retried does not)."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials} - {None}
    return [
        t
        for t in trials
        if t.state in SETTLED and t.number not in retried and not t.user_attrs.get("surplus")
    ]


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
        if is_surplus(trial, spec):
            trial.set_user_attr("surplus", True)
            raise SurplusTrial("the grid was already complete")
        trial.set_user_attr("interrupted", False)
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
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        for key, value in record.tags.items():
            trial.set_user_attr(key, value)
        return record.value

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not trial.user_attrs.get("surplus"):
            on_trial_end(trial)

    logging.getLogger("optuna").setLevel(logging.ERROR)
    while remaining_trials(study, spec, total) > 0:
        study.optimize(objective, n_trials=1, catch=(TrialFailed, SurplusTrial), callbacks=[after])
