"""The Keras Tuner engine: the same study YAML and the same MLflow records, with keras-tuner
choosing values. Its project lives under `<runs_dir>/keras_tuner/<study>` and resumes; a trial a
killed run left unfinished is run again by Keras Tuner itself on the next start.

Samplers map to oracles: grid -> `ResumableGridOracle` (every grid point once, in order;
keras-tuner's own GridSearch does not resume a half-finished grid), random -> RandomSearch,
tpe -> BayesianOptimization. Keras Tuner prunes nothing: a study's pruner is not used (said at
the start), and a `hyperband` pruner is refused, since Hyperband would hand trials epoch budgets
and parent checkpoints that this harness does not take. A study of several objectives is refused
too: Keras Tuner would optimize their sum, not their Pareto front.
"""

from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from colorize.backend import import_keras_quietly
from experiments.analysis.ranking import best_of
from experiments.common.errors import TrialFailed, UsageError, first_line
from experiments.engines import Engine, Outcome, TrialEnd

import_keras_quietly()  # Keras Tuner imports TensorFlow: its start-up lines stay hidden
import keras_tuner as kt  # noqa: E402

if TYPE_CHECKING:
    from experiments.trials.trial_runner import TrialRunner

FINGERPRINT_FILE = "fingerprint.json"
LOCK_FILE = ".running.lock"  # held by the one process that runs the project
log = logging.getLogger(__name__)


def check_project(project: Path) -> None:
    """Refuse a project whose JSON files cannot be read (a file cut short or written over):
    one line naming the file, before anything is written.

    Raises:
        UsageError: a damaged file.
    """
    for path in sorted(project.rglob("*.json")):
        try:
            json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise UsageError(
                f"Keras Tuner project {project} is damaged: {path} cannot be read "
                f"({first_line(error)}); move the project aside to start the study afresh"
            ) from None


class ResumableGridOracle(kt.Oracle):
    """Visits every grid point exactly once; what was tried is saved with the oracle, so a rerun
    continues with the points left."""

    def __init__(self, grid: dict[str, list], **kwargs):
        super().__init__(**kwargs)
        self.grid = grid

    def populate_space(self, trial_id):
        names = list(self.grid)
        for combination in itertools.product(*(self.grid[name] for name in names)):
            values = dict(zip(names, combination, strict=True))
            digest = self._compute_values_hash(values)
            if digest not in self._tried_so_far:
                self._tried_so_far.add(digest)
                return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}
        return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}


def declare_space(hp: kt.HyperParameters, spec) -> None:
    for name, param in spec.space.items():
        if param.choices is not None:
            hp.Choice(name, param.choices)
        elif param.is_int:
            hp.Int(name, param.low, param.high, step=param.step or 1)
        else:
            hp.Float(name, param.low, param.high, sampling="log" if param.log else "linear")


def make_oracle(spec, total: int) -> kt.Oracle:
    hp = kt.HyperParameters()
    declare_space(hp, spec)
    common = {
        "objective": kt.Objective("score", "min" if spec.direction == "minimize" else "max"),
        "hyperparameters": hp,
        "seed": spec.sampler.get("seed"),
        "max_consecutive_failed_trials": max(3, total),  # failed trials must not end the study
    }
    if spec.is_grid:
        return ResumableGridOracle(spec.grid(), max_trials=total, **common)
    if spec.sampler["type"] == "tpe":
        return kt.oracles.BayesianOptimizationOracle(max_trials=total, **common)
    return kt.oracles.RandomSearchOracle(max_trials=total, **common)


class StudyTuner(kt.Tuner):
    """Runs each keras-tuner trial through the shared TrialRunner (no hypermodel needed)."""

    def __init__(self, runner: TrialRunner, on_trial_end, **kwargs):
        super().__init__(oracle=kwargs.pop("oracle"), hypermodel=None, **kwargs)
        self.runner, self.report_trial_end = runner, on_trial_end

    def run_trial(self, trial, *args, **kwargs):
        params = dict(trial.hyperparameters.values)
        try:
            record = self.runner.run(int(trial.trial_id), params)
        except TrialFailed as error:
            self.report_trial_end()
            # keras-tuner retries "invalid" trials; a failed one must not be retried.
            raise kt.errors.FailedTrialError(str(error)) from None
        self.report_trial_end()
        return {"score": record.value}

    def save_model(self, trial_id, model, step=0):  # models are saved by the runner
        pass


def trial_rows(oracle: kt.Oracle) -> list[dict]:
    rows = []
    for trial_id, trial in sorted(oracle.trials.items()):
        rows.append(
            {
                "number": int(trial_id),
                "state": {"COMPLETED": "COMPLETE", "FAILED": "FAIL"}.get(
                    trial.status, trial.status
                ),
                "value": trial.score,
                **{f"params_{k}": v for k, v in trial.hyperparameters.values.items()},
            }
        )
    return rows


class KerasTunerEngine(Engine):
    name = "keras_tuner"

    def __init__(self, cfg, spec, study, runs_dir):
        super().__init__(cfg, spec, study, runs_dir)
        if spec.is_multi:
            raise UsageError(
                f"engine=keras_tuner cannot run study {spec.name}: it has several objectives "
                f"({', '.join(spec.metrics)}), which Keras Tuner would add into one instead of "
                "searching their Pareto front; run it with engine=optuna"
            )
        if spec.pruner["type"] == "hyperband":
            raise UsageError(
                f"engine=keras_tuner cannot run study {spec.name}: its hyperband pruner would "
                "need Keras Tuner's Hyperband, whose trials resume other trials' checkpoints; "
                "run it with engine=optuna"
            )
        if cfg.workers > 1:
            raise UsageError("workers>1 needs engine=optuna (Keras Tuner runs one process)")
        self.project = runs_dir / "keras_tuner" / study

    @classmethod
    def may_hold(cls, cfg, study, runs_dir) -> bool:
        return (runs_dir / "keras_tuner" / study).is_dir()

    @property
    def location(self) -> str:
        return str(self.project)

    def stored_fingerprint(self):
        path = self.project / FINGERPRINT_FILE
        if not self.project.is_dir():
            return False, None, None
        check_project(self.project)
        if not path.is_file():
            return True, None, None
        stored = json.loads(path.read_text())
        return True, stored.get("values"), stored.get("environment")

    def close(self) -> None:
        if getattr(self, "lock", None) is not None:
            self.lock.close()
            self.lock = None

    def open(self, fingerprint, environment) -> None:
        from colorize.locks import hold

        self.project.mkdir(parents=True, exist_ok=True)
        self.lock = hold(self.project / LOCK_FILE)  # freed by `close`, or the process's end
        if self.lock is None:
            raise UsageError(
                f"study {self.study} (engine=keras_tuner) is running in another process on "
                "this machine, and Keras Tuner runs a study in one process: wait for it to "
                "end, or run many workers with engine=optuna"
            )
        record = {"values": fingerprint.values, "environment": environment}
        (self.project / FINGERPRINT_FILE).write_text(json.dumps(record, indent=1))
        if self.spec.pruner["type"] != "none":
            log.warning(
                "engine=keras_tuner prunes nothing: study %s's %s pruner is not used",
                self.spec.name,
                self.spec.pruner["type"],
            )

    def recover(self, tracker) -> None:
        # One process runs a Keras Tuner study (`open` holds its lock): a trial run still open
        # is from a killed run, unless its process lives (then it is left alone). Keras Tuner
        # reruns that trial under the same number; its old run is closed here.
        tracker.close_open_trial_runs("its worker stopped during the trial")

    def done(self) -> int:
        done = 0
        for path in self.project.glob("trial_*/trial.json"):
            status = json.loads(path.read_text()).get("status")
            done += status in ("COMPLETED", "FAILED", "INVALID", "STOPPED")
        return done

    def run(self, runner, total: int, on_trial_end: TrialEnd) -> Outcome:
        def report() -> None:
            rows = trial_rows(tuner.oracle)
            settled = [r for r in rows if r["state"] in ("COMPLETE", "FAIL")]
            best = best_of(rows, self.spec.direction)
            leaders = [(best["number"], (best["value"],))] if best else []
            on_trial_end(len(settled), leaders, settled)

        tuner = StudyTuner(
            runner,
            report,
            oracle=make_oracle(self.spec, total),
            directory=str(self.project.parent),
            project_name=self.project.name,
            overwrite=False,
        )
        tuner.search()
        rows = trial_rows(tuner.oracle)
        best = best_of(rows, self.spec.direction)
        if best is None:
            return Outcome(rows, None)
        run_id = runner.tracker.trial_run_id(best["number"], self.name)
        return Outcome(rows, (best["number"], run_id))
