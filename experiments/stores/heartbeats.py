"""Optuna's heartbeats, overruled by this host's liveness check and kept beating through errors.

Optuna fails a RUNNING trial whose heartbeat is older than the grace period
(`optuna.storages.fail_stale_trials`, which `study.optimize` also calls before each trial). Here
a trial whose worker ran on this host is judged by its process instead (`experiments.stores.liveness`):
while that process lives, a late heartbeat (a busy machine, a store locked for a while) never
fails its trial; once it is gone the engine fails it at once, without waiting for the grace
period. A trial of another host is failed by its heartbeat, with the reason recorded on it.

Optuna's heartbeat thread ends at the first failed write, leaving its trial to be reclaimed as
if its worker were dead. `LivenessStorage.record_heartbeat` never raises: a failed write is said
in a warning line and tried again at the next beat, and its return is said too.
"""

from __future__ import annotations

import logging
import threading

from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage

from experiments.common import records
from experiments.common.errors import first_line
from experiments.stores import liveness

log = logging.getLogger(__name__)


def stale_reason(worker: dict | None, grace: int | None) -> str:
    """Why a trial of another host is failed: its worker went silent."""
    return f"its heartbeat stopped: {liveness.describe(worker)} sent none for {grace or '?'} s"


class LivenessStorage(RDBStorage):
    """An Optuna RDB storage whose stale trials leave out those of live workers on this host,
    and whose heartbeat writes survive errors (module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._failing: set[int] = set()  # trials whose last heartbeat write failed
        self._failing_lock = threading.Lock()
        self._numbers: dict[int, int] = {}  # trial id -> number, for messages

    def _trial_name(self, trial_id: int) -> str:
        if trial_id not in self._numbers:
            try:
                self._numbers[trial_id] = self.get_trial_number_from_id(trial_id)
            except Exception:  # the store that failed the write may fail this too
                return f"trial id {trial_id}"
        return f"trial {self._numbers[trial_id]}"

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = []
        for trial_id in super()._get_stale_trial_ids(study_id):
            worker = self.get_trial_system_attrs(trial_id).get(liveness.WORKER_ATTR)
            if liveness.judge(worker) is liveness.Liveness.ALIVE:
                continue  # its process runs here: slow, not gone
            try:  # the reason, while the trial may still be written to
                reason = stale_reason(worker, self.grace_period)
                self.set_trial_user_attr(trial_id, records.FAIL_REASON_ATTR, reason)
            except UpdateFinishedTrialError:
                continue  # it ended meanwhile
            stale.append(trial_id)
        return stale

    def record_heartbeat(self, trial_id: int) -> None:
        # named before the write: once a beat is in, the store may be locked (a failing write
        # must still say which trial); a store already failing is not asked again
        name = "" if trial_id in self._failing else self._trial_name(trial_id)
        try:
            super().record_heartbeat(trial_id)
        except Exception as error:  # a locked or unreachable store: the next beat tries again
            with self._failing_lock:
                first = trial_id not in self._failing
                self._failing.add(trial_id)
            if first:
                log.warning(
                    "heartbeat of %s not written (%s); tried again every %s s",
                    name or self._trial_name(trial_id),
                    first_line(error.__cause__ or error),  # Optuna's own words say little
                    self.heartbeat_interval,
                )
            return
        with self._failing_lock:
            recovered = trial_id in self._failing
            self._failing.discard(trial_id)
        if recovered:
            log.warning("heartbeat of %s written again", self._trial_name(trial_id))
