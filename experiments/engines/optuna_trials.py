"""Reading an Optuna study's trials: which count, which repeat another, table rows, heartbeats."""

from __future__ import annotations

import itertools
import math
import random

import optuna
from optuna.trial import TrialState

from experiments.common import records
from experiments.engines import value_columns

SETTLED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
DUPLICATE_LIMIT = 50  # repeats in a row after which the study stops (a safety net)
RANDOM_TRIES = 200  # random draws tried for unseen values in a space with ranges


class SurplusTrial(Exception):
    """A trial asked for after the grid was complete; recorded as failed and not counted."""


class DuplicateTrial(Exception):
    """A sampled parameter set that already ran (or runs); recorded as failed, not counted."""


def _uncounted(trial: optuna.trial.FrozenTrial) -> bool:
    attrs = trial.user_attrs
    return bool(attrs.get(records.SURPLUS_ATTR) or attrs.get(records.DUPLICATE_ATTR))


def retried_numbers(trials) -> set[int]:
    """Trials that failed and were queued again: every number in a retry's history (a retry
    of a retry names the first trial as `failed_trial`, and both in its history)."""
    return {number for t in trials for number in t.system_attrs.get("retry_history", [])}


def settled_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Finished trials that count towards the budget (a failed trial that was retried, a grid
    surplus and a sampled duplicate do not)."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    return [
        t for t in trials if t.state in SETTLED and t.number not in retried and not _uncounted(t)
    ]


def is_surplus(trial: optuna.Trial, spec) -> bool:
    """A grid study's trial that is not one of its enqueued points (or a retry of one): the
    grid was finished by other workers between our check and our ask."""
    if not spec.is_grid:
        return False
    frozen = trial.study._storage.get_trial(trial._trial_id)
    return "fixed_params" not in frozen.system_attrs and "failed_trial" not in frozen.system_attrs


def is_duplicate(trial: optuna.Trial, params: dict) -> bool:
    """Whether another counted trial already finished, or is running, with these values."""
    for other in trial.study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    ):
        if other.number != trial.number and not _uncounted(other) and other.params == params:
            return True
    return False


def objective_values(trial: optuna.trial.FrozenTrial, metrics: list[str]) -> dict:
    """A trial's objective columns (`experiments.engines.value_columns`), None where unset."""
    values = trial.values or [None] * len(metrics)
    return dict(zip(value_columns(metrics), values, strict=True))


def rows_of(trials: list[optuna.trial.FrozenTrial], metrics: list[str]) -> list[dict]:
    """Trials as table rows; `metrics`: the study's objectives."""
    return [
        {
            "number": t.number,
            "state": t.state.name,
            **objective_values(t, metrics),
            **{f"params_{k}": v for k, v in t.params.items()},
            "best_epoch": t.user_attrs.get(records.BEST_EPOCH_TAG),
            "early_stopped": t.user_attrs.get(records.EARLY_STOPPED_TAG),
            "seconds": round(t.duration.total_seconds(), 1) if t.duration else None,
            "fail_reason": t.user_attrs.get(records.FAIL_REASON_ATTR, ""),
        }
        for t in trials
    ]


def heartbeat_ages(storage, study_id: int) -> dict[int, float]:
    """Seconds since each RUNNING trial's last heartbeat (trial id -> age); {} where the storage
    cannot tell. Reads Optuna's heartbeat table, which it exposes no getter for."""
    try:
        import sqlalchemy
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        with _create_scoped_session(storage.scoped_session) as session:
            now = session.execute(sqlalchemy.func.now()).scalar().replace(tzinfo=None)
            running = (
                session.query(models.TrialModel)
                .filter(models.TrialModel.state == TrialState.RUNNING)
                .filter(models.TrialModel.study_id == study_id)
                .all()
            )
            return {
                trial.trial_id: (now - trial.heartbeats[0].heartbeat).total_seconds()
                for trial in running
                if trial.heartbeats
            }
    except Exception:  # another Optuna version or storage: no countdown, the wait still works
        return {}


def _seen(study: optuna.Study) -> set[tuple]:
    states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)
    return {
        tuple(sorted(t.params.items()))
        for t in study.get_trials(deepcopy=False, states=states)
        if not _uncounted(t) and t.params
    } | {
        tuple(sorted(t.system_attrs.get("fixed_params", {}).items()))
        for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    }


def _draw(param, rng: random.Random):
    if param.choices is not None:
        return rng.choice(param.choices)
    if param.is_int:
        return rng.randint(int(param.low), int(param.high))
    if param.log:
        return math.exp(rng.uniform(math.log(param.low), math.log(param.high)))
    return rng.uniform(param.low, param.high)


def unseen_values(study: optuna.Study, spec, seed: int) -> dict | None:
    """Values no counted trial has run (or holds queued), drawn at random: what to run instead
    when the sampler repeats itself (TPE keeps proposing its favourite on a small space). None
    when every combination of a space of choices has been run: the space is exhausted."""
    rng = random.Random(seed)
    seen = _seen(study)
    names = list(spec.space)
    if all(spec.space[n].choices is not None for n in names):
        left = [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(spec.space[n].choices for n in names))
            if tuple(sorted(zip(names, values, strict=True))) not in seen
        ]
        return rng.choice(left) if left else None
    for _ in range(RANDOM_TRIES):
        values = {name: _draw(spec.space[name], rng) for name in names}
        if tuple(sorted(values.items())) not in seen:
            return values
    return None
