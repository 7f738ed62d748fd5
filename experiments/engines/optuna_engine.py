"""The Optuna engine: a study in an Optuna storage (SQLite under runs_dir by default), resumable.

Every trial records its worker (`experiments.stores.liveness`). A rerun fails and retries, with the same
values and from its last epoch checkpoint, every RUNNING trial whose worker is gone: at once when
that worker ran on this host, after the heartbeat's grace period when it ran on another. Trials
still running in live workers are waited for (with a countdown for other hosts), so a study ends
only when every trial has ended, or says which are still running where.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path

import optuna
from optuna.trial import TrialState

from colorize.locks import exclusive
from experiments.common import records
from experiments.common.errors import StudyStopped, TrialFailed, UsageError, first_line
from experiments.engines import Engine, Outcome, TrialEnd, leader_values, leaders_of, racing
from experiments.engines.optuna_grid import enqueue_grid
from experiments.engines.optuna_reclaim import Reclaims
from experiments.engines.optuna_sampling import (
    RecordingSampler,
    make_pruner,
    make_sampler,
    suggest,
)
from experiments.engines.optuna_trials import (
    DUPLICATE_LIMIT,
    DuplicateTrial,
    SurplusTrial,
    heartbeat_ages,
    is_duplicate,
    is_surplus,
    retried_numbers,
    rows_of,
    settled_trials,
    unseen_values,
)
from experiments.stores import liveness
from experiments.stores.store_locks import store_lock
from experiments.stores.store_urls import (
    default_storage,
    has_heartbeats,
    journal_path,
    open_optuna_storage,
    sqlite_path,
)
from experiments.stores.workers import worker_index

MAX_RETRY = 3
POLL_SECONDS = 2.0

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger(__name__)


class RetryOnce:
    """Queues a failed trial again with the same values (up to MAX_RETRY times), once however
    many workers fail it: SQLite does not lock rows, so two workers failing one trial at the
    same moment both succeed; they take turns here, and the second finds the retry queued."""

    def __init__(self, sqlite_file: Path | None):
        self.inner = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
        self.lock = (
            sqlite_file.with_name(f".{sqlite_file.name}.retry.lock") if sqlite_file else None
        )

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with exclusive(self.lock) if self.lock else contextlib.nullcontext():
            for other in study.get_trials(deepcopy=False):
                if trial.number in other.system_attrs.get("retry_history", []):
                    return
            self.inner(study, trial)


def name_objectives(study: optuna.Study, metrics: list[str]) -> None:
    """Name the study's objectives as optuna-dashboard shows them ("val_loss", not "Objective
    0"), one name per objective; a stored study without names gets them when it resumes."""
    if study.metric_names != metrics:
        study.set_metric_names(metrics)


class OptunaEngine(Engine):
    name = "optuna"

    def __init__(self, cfg, spec, study, runs_dir):
        super().__init__(cfg, spec, study, runs_dir)
        # heartbeats and the stale-trial callback are marked experimental; the study relies on them
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        try:
            self.pruner = make_pruner(spec)
        except (TypeError, ValueError) as error:  # an option value Optuna does not take
            raise UsageError(f"study {spec.name}: pruner {spec.pruner}: {error}") from None
        self.url = cfg.storage or default_storage(runs_dir)
        self.retry = RetryOnce(sqlite_path(self.url))
        with store_lock(self.url, "optuna-store"):  # a new store's tables, made once
            self.storage = open_optuna_storage(self.url, cfg.heartbeat, self.retry)
        self.heartbeats = has_heartbeats(self.storage)
        self.grace = 3 * cfg.heartbeat
        self.study_obj: optuna.Study | None = None
        self.race = racing.Race(spec) if spec.race_start_seeds is not None else None

    @classmethod
    def may_hold(cls, cfg, study, runs_dir) -> bool:
        url = cfg.storage or default_storage(runs_dir)
        path = sqlite_path(url) or journal_path(url)
        return path is None or path.is_file()

    @property
    def location(self) -> str:
        return self.url

    def stored_fingerprint(self):
        try:
            existing = optuna.load_study(study_name=self.study, storage=self.storage)
        except KeyError:
            return False, None, None
        attrs = existing.user_attrs
        return True, attrs.get(records.FINGERPRINT_ATTR), attrs.get(records.ENVIRONMENT_ATTR)

    def open(self, fingerprint, environment) -> None:
        spec = self.spec
        study = optuna.create_study(
            study_name=self.study,
            storage=self.storage,
            load_if_exists=True,
            pruner=self.pruner,
            directions=spec.directions,
        )
        name_objectives(study, spec.metrics)
        study.set_user_attr(records.FINGERPRINT_ATTR, fingerprint.values)
        study.set_user_attr(records.ENVIRONMENT_ATTR, environment)
        # Each start of a study (and each extra local worker) samples with its own seed.
        start = int(study.user_attrs.get(records.STARTS_ATTR, 0))
        worker = worker_index()
        if worker == 0:
            study.set_user_attr(records.STARTS_ATTR, start + 1)
        study.sampler = RecordingSampler(make_sampler(spec, start=start * 64 + worker))
        if spec.is_grid:
            lock = store_lock(
                self.url, f"{self.study}.grid", getattr(self.storage, "engine", None)
            )
            enqueue_grid(study, spec.grid(), lock)
        self.study_obj = study

    # --- recovery --------------------------------------------------------------------------
    def _fail_and_retry(self, trial: optuna.trial.FrozenTrial, reason: str) -> bool:
        """Fail a RUNNING trial whose worker is gone and queue its retry (same values)."""
        study = self.study_obj
        try:
            study._storage.set_trial_user_attr(trial._trial_id, records.FAIL_REASON_ATTR, reason)
            if not study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                return False
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # another worker settled it first
        self.retry(study, study._storage.get_trial(trial._trial_id))
        return True

    def _reclaim(self) -> list[optuna.trial.FrozenTrial]:
        """Fail and retry trials whose worker is gone; return the RUNNING ones still alive or
        not yet judged."""
        study = self.study_obj
        if self.heartbeats:
            optuna.storages.fail_stale_trials(study)
        ages = heartbeat_ages(self.storage, study._study_id) if self.heartbeats else {}
        waiting = []
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = liveness.worker_of(trial)
            verdict = liveness.judge(worker)
            unbeaten = trial._trial_id not in ages and worker is None
            started = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
            if verdict is liveness.Liveness.DEAD:
                gone = f"its worker ({liveness.describe(worker)}) is gone"
                self._fail_and_retry(trial, gone)
            elif unbeaten and time.time() - started > self.grace:
                self._fail_and_retry(trial, "its worker stopped before recording itself")
            else:
                waiting.append(trial)
        return waiting

    def recover(self, tracker) -> None:
        study = self.study_obj
        self._reclaim()
        for trial in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
            attrs = trial.user_attrs
            # stopped on purpose: once more; an unexpected error: again, up to MAX_RETRY times
            if attrs.get(records.INTERRUPTED_ATTR) or attrs.get(records.RETRY_ATTR):
                self.retry(study, trial)
        trials = {t.number: t for t in study.get_trials(deepcopy=False)}
        for trial in trials.values():  # runs ended otherwise than their trials (a kill between)
            run_id = trial.user_attrs.get(records.RUN_ID_ATTR)
            if run_id and trial.state != TrialState.RUNNING:
                why = trial.user_attrs.get(records.FAIL_REASON_ATTR) or (
                    f"its worker stopped during trial {trial.number}"
                )
                tracker.settle_trial_run(run_id, trial.state.name, why)
        for run_id, number in tracker.open_trial_runs().items():  # runs no trial recorded
            trial = trials.get(number)
            if trial is None or trial.state != TrialState.RUNNING:
                why = f"its worker stopped as trial {number} began"
                tracker.end_trial_run(run_id, "FAIL", why)

    # --- running ---------------------------------------------------------------------------
    def done(self) -> int:
        return len(settled_trials(self.study_obj))

    def _remaining(self, total: int) -> int:
        study = self.study_obj
        trials = study.get_trials(deepcopy=False)
        if self.race is not None:  # a race's trials are its queued rounds, however many
            return sum(t.state == TrialState.WAITING for t in trials)
        if self.spec.is_grid and not any(t.state == TrialState.WAITING for t in trials):
            return 0  # every queued grid point (and retry) has been taken
        running = sum(t.state == TrialState.RUNNING for t in trials)
        return max(0, total - len(settled_trials(study)) - running)

    def _objective(self, runner):
        spec = self.spec

        def objective(trial: optuna.Trial) -> float | tuple[float, ...]:
            if is_surplus(trial, spec):
                trial.set_user_attr(records.SURPLUS_ATTR, True)
                raise SurplusTrial("the grid was already complete")
            trial.set_user_attr(records.INTERRUPTED_ATTR, False)
            trial.set_user_attr(records.RETRY_ATTR, False)
            trial.set_user_attr(records.FAIL_REASON_ATTR, "")  # a retry copies its original's
            params = suggest(trial, spec)
            if not spec.is_grid and is_duplicate(trial, params):
                trial.set_user_attr(records.DUPLICATE_ATTR, True)
                raise DuplicateTrial("these values were already run")
            callbacks = [self.reclaims.watch(trial)]
            if spec.pruner["type"] != "none":
                from optuna_integration import KerasPruningCallback

                callbacks.append(KerasPruningCallback(trial, spec.metric))
            try:
                record = runner.run(
                    trial.number,
                    params,
                    callbacks,
                    on_run_started=lambda run_id: trial.set_user_attr(records.RUN_ID_ATTR, run_id),
                    on_pruned=optuna.TrialPruned,
                )
                self.reclaims.check(trial, record.run_id)
            except (TrialFailed, StudyStopped) as error:
                retry = isinstance(error, StudyStopped) or error.retry
                with contextlib.suppress(Exception):  # where the store failed, recover() sees it
                    trial.set_user_attr(records.FAIL_REASON_ATTR, str(error))
                    trial.set_user_attr(records.RETRY_ATTR, retry)
                raise
            except KeyboardInterrupt:
                trial.set_user_attr(records.INTERRUPTED_ATTR, True)
                trial.set_user_attr(records.FAIL_REASON_ATTR, "interrupted")
                raise
            for key, value in record.tags.items():
                trial.set_user_attr(key, value)
            if self.race is not None:  # what the race compares, read back from the store
                columns = self.race.columns()
                compared = {m: float(record.metrics[c]) for m, c in columns.items()}
                trial.set_user_attr(racing.METRICS_ATTR, compared)
            return record.values if spec.is_multi else record.value

        def guarded(trial: optuna.Trial) -> float | tuple[float, ...]:
            """An unexpected error outside the trial's own run (e.g. writing its attributes
            to a locked store) fails the trial, to be retried by the next run, too."""
            try:
                return objective(trial)
            except (TrialFailed, StudyStopped, SurplusTrial, DuplicateTrial, optuna.TrialPruned):
                raise
            except Exception as error:
                reason = first_line(error)
                with contextlib.suppress(Exception):
                    trial.set_user_attr(records.FAIL_REASON_ATTR, reason)
                    trial.set_user_attr(records.RETRY_ATTR, True)
                raise TrialFailed(reason, retry=True) from error

        return guarded

    def _wait_line(self, trials, ages: dict[int, float]) -> str:
        parts = []
        for trial in trials:
            worker = liveness.worker_of(trial)
            where = liveness.describe(worker)
            if liveness.judge(worker) is liveness.Liveness.ALIVE:
                parts.append(f"trial {trial.number} runs in {where}")
            elif trial._trial_id in ages:
                left = max(0.0, self.grace - ages[trial._trial_id])
                parts.append(
                    f"trial {trial.number} runs in {where}: retried in {left:.0f} s unless "
                    "its heartbeat resumes"
                )
            else:
                parts.append(f"trial {trial.number} runs in {where}")
        return "waiting: " + "; ".join(parts)

    def run(self, runner, total: int, on_trial_end: TrialEnd) -> Outcome:
        study, spec = self.study_obj, self.spec
        self.reclaims = Reclaims(runner.tracker)
        objective = self._objective(runner)
        notes: list[str] = []

        def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            if trial.user_attrs.get(records.SURPLUS_ATTR) or trial.user_attrs.get(
                records.DUPLICATE_ATTR
            ):
                return
            settled = rows_of(settled_trials(study), spec.metrics)
            on_trial_end(len(settled), leader_values(settled, spec), settled)

        logging.getLogger("optuna").setLevel(logging.ERROR)
        duplicates, last_line = 0, 0.0
        while True:
            waiting = self._reclaim()
            self.reclaims.settle(study)  # runs of trials reclaimed here or elsewhere
            if self._remaining(total) > 0:
                before = len(study.get_trials(deepcopy=False))
                self.reclaims.optimize(
                    study,
                    objective,
                    catch=(TrialFailed, SurplusTrial, DuplicateTrial),
                    callbacks=[after],
                )
                newest = study.get_trials(deepcopy=False)[before:]
                repeated = any(t.user_attrs.get(records.DUPLICATE_ATTR) for t in newest)
                duplicates = duplicates + 1 if repeated else 0
                if repeated:  # run unseen values next instead of the sampler's repeat
                    fresh = unseen_values(study, spec, newest[-1].number)
                    if fresh is None or duplicates >= DUPLICATE_LIMIT:
                        notes.append(
                            "the search space is exhausted: every combination of its values "
                            "has been run"
                        )
                        break
                    study.enqueue_trial(fresh)
                continue
            if not waiting and self.race is not None and self._extend_race(runner.tracker):
                continue
            if not waiting:
                break
            blind = [
                t
                for t in waiting
                if liveness.judge(liveness.worker_of(t)) is not liveness.Liveness.ALIVE
                and not self.heartbeats
            ]
            if blind:  # no heartbeat: a worker on another host cannot be judged from here
                return self._outcome(
                    notes,
                    [
                        f"trial {t.number} is still RUNNING in "
                        f"{liveness.describe(liveness.worker_of(t))}; storage "
                        f"{self.url} has no heartbeats, so whether that worker is alive cannot "
                        "be told from here"
                        for t in blind
                    ],
                )
            if time.monotonic() - last_line >= 5:
                ages = heartbeat_ages(self.storage, study._study_id) if self.heartbeats else {}
                from tqdm.auto import tqdm

                tqdm.write(self._wait_line(waiting, ages))
                last_line = time.monotonic()
            time.sleep(POLL_SECONDS)
        return self._outcome(notes, [])

    # --- racing ----------------------------------------------------------------------------
    def race_state(self) -> racing.RaceState:
        """The race as the stored trials and planned rounds say it is."""
        study = self.study_obj
        trials = study.get_trials(deepcopy=False)
        retried = retried_numbers(trials)
        infos = [
            racing.TrialInfo(
                dict(t.params or t.system_attrs.get("fixed_params", {})),
                t.state.name,
                dict(t.user_attrs.get(racing.METRICS_ATTR, {})),
            )
            for t in trials
            if t.number not in retried
            and not t.user_attrs.get(records.SURPLUS_ATTR)
            and not t.user_attrs.get(records.DUPLICATE_ATTR)
        ]
        attrs = study.user_attrs
        rounds = [v for k, v in sorted(attrs.items()) if k.startswith(racing.ROUND_ATTR_PREFIX)]
        return self.race.state(infos, rounds)

    def _enqueue_rounds(self, rounds: list[dict]) -> None:
        """Queue each planned round's trials that the study holds in no trial (a process
        killed while queueing a round left some out)."""
        for planned in rounds:
            for group in planned["groups"]:
                params = {str(k): v for k, v in group} | {racing.SEED: planned["seed"]}
                self.study_obj.enqueue_trial(params, skip_if_exists=True)

    def _extend_race(self, tracker) -> bool:
        """Judge the race after a round and queue the next one, under the store's lock (two
        workers never plan the same round); returns whether any trial was queued."""
        study = self.study_obj
        lock = store_lock(self.url, f"{self.study}.race", getattr(self.storage, "engine", None))
        with lock:
            state = self.race_state()
            self._enqueue_rounds(state.rounds)
            if any(t.state == TrialState.WAITING for t in study.get_trials(deepcopy=False)):
                return True  # a round planned before a kill, now queued whole
            if state.next_round is None:
                return False
            index = len(state.rounds) + 1
            study.set_user_attr(f"{racing.ROUND_ATTR_PREFIX}{index:03d}", state.next_round)
            self._enqueue_rounds([state.next_round])
        from tqdm.auto import tqdm

        for line in racing.round_lines(state, state.seeds_a_group(self._race_infos())):
            tqdm.write(line)
        with contextlib.suppress(Exception):  # the race's records never stop the race
            tracker.log_metrics(
                tracker.parent_run_id, racing.round_metrics(state), step=len(state.looks) - 1
            )
            tracker.log_dict(tracker.parent_run_id, state.record(), racing.RACE_ARTIFACT)
        return True

    def _race_infos(self) -> list:
        return [
            racing.TrialInfo(dict(t.params), t.state.name) for t in settled_trials(self.study_obj)
        ]

    def _outcome(self, notes: list[str], still_running: list[str]) -> Outcome:
        trials = self.study_obj.get_trials(deepcopy=False)
        for trial in settled_trials(self.study_obj):  # failed by an error, not by its values
            if trial.state == TrialState.FAIL and trial.user_attrs.get(records.RETRY_ATTR):
                values = " ".join(f"{k}={v}" for k, v in trial.params.items())
                tries = len(trial.system_attrs.get("retry_history", [])) + 1
                again = (
                    "the next run of this command retries it"
                    if tries <= MAX_RETRY
                    else f"not retried again after {tries} tries"
                )
                notes.append(
                    f"trial {trial.number} ({values}) failed: "
                    f"{trial.user_attrs.get(records.FAIL_REASON_ATTR, '')}; {again}"
                )
        shown = [  # trials that ran, or run: not queued ones, surplus or repeats
            t
            for t in trials
            if t.state != TrialState.WAITING
            and not t.user_attrs.get(records.SURPLUS_ATTR)
            and not t.user_attrs.get(records.DUPLICATE_ATTR)
        ]
        rows = rows_of(shown, self.spec.metrics)
        run_ids = {t.number: t.user_attrs.get(records.RUN_ID_ATTR) for t in trials}
        leaders = [(row["number"], run_ids[row["number"]]) for row in leaders_of(rows, self.spec)]
        best = leaders[0] if leaders else None
        front = leaders if self.spec.is_multi else []
        race = self.race_state() if self.race is not None and not still_running else None
        return Outcome(rows, best, still_running, notes, front, race)
