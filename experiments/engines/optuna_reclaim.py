"""Trials reclaimed from their worker: another worker failed them (a heartbeat gone silent, a
worker judged gone) and queued their retry.

The reclaiming worker closes their MLflow runs as FAILED with the reason (`close_reclaimed_runs`).
A worker that was only slow, not gone, finds out at its trial's next epoch end (`Reclaims.watch`)
and stops that trial, its run FAILED with the reason; Optuna, which refuses to record the end of
a trial that already ended, is not let to end the study over it (`Reclaims.optimize`).
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState

from experiments.common import records
from experiments.common.errors import TrialFailed


class TrialReclaimed(TrialFailed):
    """This worker's trial was failed by another worker; its retry is already queued."""


def reclaimed_reason(study: optuna.Study, trial_id: int) -> str | None:
    """Why trial `trial_id` was reclaimed, or None while it is still RUNNING."""
    trial = study._storage.get_trial(trial_id)
    if trial.state == TrialState.RUNNING:
        return None
    why = trial.user_attrs.get(records.FAIL_REASON_ATTR) or "failed by another worker"
    return f"trial {trial.number} was reclaimed ({why}); its retry runs it again"


def close_reclaimed_runs(study: optuna.Study, tracker) -> int:
    """End as FAILED, with the reason, each open MLflow trial run whose trial has ended (a
    trial reclaimed from a worker that went silent); returns how many."""
    states = {t.number: t for t in study.get_trials(deepcopy=False)}
    closed = 0
    for run_id, number in tracker.open_trial_runs().items():
        trial = states.get(number)
        if trial is None or trial.state == TrialState.RUNNING:
            continue  # still running, or its trial not recorded yet
        why = trial.user_attrs.get(records.FAIL_REASON_ATTR) or "its trial was reclaimed"
        tracker.end_trial_run(run_id, "FAIL", why)
        closed += 1
    return closed


class Reclaims:
    """Follows this worker's trials through `study.optimize` and the reclaims around them."""

    def __init__(self, tracker):
        self.tracker = tracker
        self.current: optuna.Trial | None = None
        self.failed_seen = -1  # failed trials when runs were last settled

    def watch(self, trial: optuna.Trial):
        """A Keras callback that stops the trial's fit at the end of an epoch once another
        worker has reclaimed it."""
        from colorize.train import EpochCheck  # Keras is loaded by then

        self.current = trial

        def check() -> None:
            reason = reclaimed_reason(trial.study, trial._trial_id)
            if reason is not None:
                raise TrialReclaimed(reason)

        return EpochCheck(check)

    def check(self, trial: optuna.Trial, run_id: str | None) -> None:
        """After a trial's fit: raise `TrialReclaimed` where it was reclaimed meanwhile, its
        run (finished by then) marked FAILED with the reason."""
        reason = reclaimed_reason(trial.study, trial._trial_id)
        if reason is not None:
            if run_id:
                self.tracker.settle_trial_run(run_id, "FAIL", reason)
            raise TrialReclaimed(reason)

    def optimize(self, study: optuna.Study, objective, **options) -> None:
        """One trial of `study.optimize`; a trial reclaimed from this worker ends quietly."""
        self.current = None
        try:
            study.optimize(objective, n_trials=1, **options)
        except ValueError:  # "Cannot tell a FAIL trial": it was reclaimed
            trial = self.current
            if trial is None or reclaimed_reason(study, trial._trial_id) is None:
                raise

    def settle(self, study: optuna.Study) -> None:
        """Close the runs of trials reclaimed since the last call (by anyone)."""
        failed = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
        if failed != self.failed_seen:
            close_reclaimed_runs(study, self.tracker)
            self.failed_seen = failed
