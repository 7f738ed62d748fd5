"""Keras Tuner as a second engine, pruning, infeasible and diverging trials."""

from __future__ import annotations

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.studies_helpers import load_trials, mlflow_runs, run_cli

TRIAL_COLUMNS = ("optimizer", "kernel_size", "padding", "strides", "epochs", "seed")


def test_keras_tuner_engine_logs_the_same_runs_and_resumes(tmp_path):
    result = run_cli(
        "study=optimizers", "profile=smoke", "tuner=keras_tuner", f"runs_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = mlflow_runs(tmp_path, "optimizers")
    children = runs[runs["tags.colorize.role"] == "trial"]
    assert len(children) == 3 and set(children["tags.colorize.engine"]) == {"keras_tuner"}
    assert set(children["params.optimizer"]) == {"adam", "adamax", "rmsprop"}
    for column in TRIAL_COLUMNS:
        assert children[f"params.{column}"].notna().all()
    client = MlflowClient()
    for run_id in children["run_id"]:
        assert len(client.get_metric_history(run_id, "val_loss")) >= 2
        assert "samples.png" in {a.path for a in client.list_artifacts(run_id)}
    assert (tmp_path / "keras_tuner" / "optimizers").is_dir()
    again = run_cli(
        "study=optimizers", "profile=smoke", "tuner=keras_tuner", f"runs_dir={tmp_path}"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(mlflow_runs(tmp_path, "optimizers")) == len(runs)


@pytest.fixture
def runner_factory(tmp_path, smoke_data):
    """A TrialRunner on the smoke data with a real MLflow store in tmp_path."""
    from experiments.config import compose
    from experiments.objective import TrialRunner
    from experiments.space import load_study
    from experiments.stores import default_tracking_uri
    from experiments.tracking import Tracker

    def make(study: str, *overrides: str):
        cfg, profile = compose(
            ["profile=smoke", f"study={study}", f"runs_dir={tmp_path}", *overrides]
        )
        spec = load_study(study).for_profile(profile)
        tracker = Tracker(default_tracking_uri(tmp_path), study, tmp_path)
        tracker.start_study_run("test", "optuna")
        data = smoke_data
        if cfg.data.image_size != data.image_size:
            from colorize.data import load_embedded

            data = load_embedded(cfg.data.image_size, 2, seed=0)
        return TrialRunner(
            cfg, spec, profile, data, tracker, "optuna", tmp_path / "models"
        ), tracker

    return make


def test_infeasible_architecture_is_a_failed_trial_with_its_reason(runner_factory):
    from experiments.objective import TrialFailed

    runner, tracker = runner_factory("architecture", "data.image_size=16")
    with pytest.raises(TrialFailed, match="valid padding with kernel 7"):
        runner.run(0, {"kernel_size": 7, "padding": "valid", "strides": 2})
    run = tracker.client.search_runs([tracker.experiment_id], "tags.`colorize.trial` = '0'")[0]
    assert run.info.status == "FAILED"
    assert run.data.tags["trial.state"] == "FAIL"
    assert "smallest feature map" in run.data.tags["trial.fail_reason"]


def test_pruned_trial_keeps_its_curve_and_ends_killed(runner_factory, tmp_path):
    from optuna_integration import KerasPruningCallback

    runner, tracker = runner_factory("architecture")
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        pruner=optuna.pruners.ThresholdPruner(upper=0.0, n_warmup_steps=0),
    )
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        runner.run(
            trial.number,
            {"kernel_size": 3, "padding": "same", "strides": 2},
            [KerasPruningCallback(trial, "val_loss")],
            on_pruned=optuna.TrialPruned,
        )
    run = tracker.client.search_runs([tracker.experiment_id], "tags.`colorize.role` = 'trial'")[0]
    assert run.info.status == "KILLED" and run.data.tags["trial.state"] == "PRUNED"
    assert len(tracker.client.get_metric_history(run.info.run_id, "val_loss")) >= 1
    assert "learning_curve.png" in {a.path for a in tracker.client.list_artifacts(run.info.run_id)}


def test_diverging_trials_fail_with_their_reason_and_the_study_goes_on(tmp_path):
    # A huge learning rate makes losses NaN: such a trial fails with its reason, the study goes
    # on to the next trial, and the command still exits 0 with every trial recorded.
    result = run_cli(
        "study=optimizers", "profile=smoke", f"runs_dir={tmp_path}", "trainer.learning_rate=1e12"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load_trials(tmp_path, "optimizers")
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(trials) == 3 and failed
    assert all("NaN" in t.user_attrs["fail_reason"] for t in failed)
    runs = mlflow_runs(tmp_path, "optimizers")
    children = runs[runs["tags.colorize.role"] == "trial"].set_index("tags.colorize.trial")
    for trial in trials:
        run = children.loc[str(trial.number)]
        expected = "FAILED" if trial.state.name == "FAIL" else "FINISHED"
        assert run["status"] == expected
    failed_runs = children[children["status"] == "FAILED"]
    assert failed_runs["tags.trial.fail_reason"].str.contains("TrainingDiverged").all()
