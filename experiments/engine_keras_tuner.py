"""The Keras Tuner engine: the same study YAML and the same MLflow records, with keras-tuner
choosing values. Its project lives under `<runs_dir>/keras_tuner/<study>` and resumes.

Samplers map to oracles: grid -> `ResumableGridOracle` (every grid point once, in order; keras-tuner's
own GridSearch does not resume a half-finished grid), random -> RandomSearch, tpe ->
BayesianOptimization; a `hyperband` pruner selects Hyperband, whose epoch budget per trial
replaces trainer.epochs.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import keras_tuner as kt

from experiments.objective import TrialFailed, TrialRunner
from experiments.space import StudySpec


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


def declare_space(hp: kt.HyperParameters, spec: StudySpec) -> None:
    for name, param in spec.space.items():
        if param.choices is not None:
            hp.Choice(name, param.choices)
        elif param.is_int:
            hp.Int(name, param.low, param.high, step=param.step or 1)
        else:
            hp.Float(name, param.low, param.high, sampling="log" if param.log else "linear")


def make_oracle(spec: StudySpec, total: int, max_epochs: int) -> kt.Oracle:
    direction = "min" if spec.direction == "minimize" else "max"
    objective = kt.Objective("score", direction)
    hp = kt.HyperParameters()
    declare_space(hp, spec)
    seed = spec.sampler.get("seed")
    common = {
        "objective": objective,
        "hyperparameters": hp,
        "seed": seed,
        "max_consecutive_failed_trials": max(3, total),  # failed trials must not end the study
    }
    if spec.pruner["type"] == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=max_epochs, **common)
    if spec.is_grid:
        return ResumableGridOracle(spec.grid(), max_trials=total, **common)
    if spec.sampler["type"] == "tpe":
        return kt.oracles.BayesianOptimizationOracle(max_trials=total, **common)
    return kt.oracles.RandomSearchOracle(max_trials=total, **common)


class StudyTuner(kt.Tuner):
    """Runs each keras-tuner trial through the shared TrialRunner (no hypermodel needed)."""

    def __init__(self, runner: TrialRunner, spec: StudySpec, on_trial_end: Callable, **kwargs):
        super().__init__(oracle=kwargs.pop("oracle"), hypermodel=None, **kwargs)
        self.runner, self.spec, self.report_trial_end = runner, spec, on_trial_end

    def run_trial(self, trial, *args, **kwargs):
        values = dict(trial.hyperparameters.values)
        params = {k: v for k, v in values.items() if not k.startswith("tuner/")}
        if "tuner/epochs" in values:  # Hyperband's budget for this trial
            params["epochs"] = values["tuner/epochs"]
        try:
            record = self.runner.run(int(trial.trial_id), params)
        except TrialFailed as error:
            self.report_trial_end(trial.trial_id, "FAIL", None)
            # keras-tuner retries "invalid" trials; a failed one must not be retried.
            raise kt.errors.FailedTrialError(str(error)) from None
        self.report_trial_end(trial.trial_id, "COMPLETE", record.value)
        return {"score": record.value}

    def save_model(self, trial_id, model, step=0):  # models are saved by the runner
        pass


def run_study(
    spec: StudySpec,
    runner: TrialRunner,
    total: int,
    project_dir: Path,
    max_epochs: int,
    on_trial_end,
) -> StudyTuner:
    oracle = make_oracle(spec, total, max_epochs)
    tuner = StudyTuner(
        runner,
        spec,
        on_trial_end,
        oracle=oracle,
        directory=str(project_dir.parent),
        project_name=project_dir.name,
        overwrite=False,
    )
    tuner.search()
    return tuner


def trial_rows(tuner: kt.Tuner) -> list[dict]:
    rows = []
    for trial_id, trial in sorted(tuner.oracle.trials.items()):
        rows.append(
            {
                "number": int(trial_id),
                "state": {"COMPLETED": "COMPLETE", "FAILED": "FAIL"}.get(
                    trial.status, trial.status
                ),
                "value": trial.score,
                **{
                    f"params_{k}": v
                    for k, v in trial.hyperparameters.values.items()
                    if not k.startswith("tuner/")
                },
            }
        )
    return rows
