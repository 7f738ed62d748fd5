"""Keras Tuner as a second engine, pruning, infeasible and diverging trials."""

from __future__ import annotations

import shutil

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.studies_helpers import copy_stores, load_trials, mlflow_runs, run_cli

TRIAL_COLUMNS = ("optimizer", "kernel_size", "padding", "strides", "epochs", "seed")


def test_keras_tuner_engine_logs_the_same_runs_resumes_and_registers_its_own_model(
    tmp_path, smoke_optimizers_study
):
    copy_stores(smoke_optimizers_study[0], tmp_path)  # beside the smoke study's Optuna engine
    result = run_cli(
        "study=optimizers", "profile=smoke", "tuner=keras_tuner", f"runs_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = mlflow_runs(tmp_path, "optimizers")
    children = runs[runs["tags.colorize.role"] == "trial"]
    children = children[children["tags.colorize.engine"] == "keras_tuner"]
    assert len(children) == 3
    assert set(children["params.optimizer"]) == {"adam", "adamax", "rmsprop"}
    for column in TRIAL_COLUMNS:
        assert children[f"params.{column}"].notna().all()
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    for run_id in children["run_id"]:
        assert len(client.get_metric_history(run_id, "val_loss")) >= 2
        assert "samples.png" in {a.path for a in client.list_artifacts(run_id)}
    assert (tmp_path / "keras_tuner" / "optimizers").is_dir()
    # each engine registers its own best model: the Optuna study's is not replaced
    models = {m.name: m for m in client.search_registered_models()}
    assert set(models) == {"optimizers", "optimizers-keras-tuner"}
    assert "models:/optimizers-keras-tuner/latest" in result.stdout
    again = run_cli(
        "study=optimizers", "profile=smoke", "tuner=keras_tuner", f"runs_dir={tmp_path}"
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(mlflow_runs(tmp_path, "optimizers")) == len(runs)


def test_keras_tuner_refuses_a_hyperband_pruner_before_the_study_starts(
    tmp_path, monkeypatch, capsys
):
    from experiments.run import main
    from experiments.settings import config
    from experiments.settings import study_spec as space

    studies = tmp_path / "studies"
    shutil.copytree(config.STUDIES_DIR, studies)
    text = (studies / "search.yaml").read_text()
    pruner = next(line for line in text.splitlines() if line.startswith("pruner:"))
    (studies / "search.yaml").write_text(text.replace(pruner, "pruner: {type: hyperband}"))
    monkeypatch.setattr(config, "STUDIES_DIR", studies)
    monkeypatch.setattr(space, "STUDIES_DIR", studies)
    args = ["study=search", "profile=smoke", "tuner=keras_tuner", f"runs_dir={tmp_path / 'runs'}"]
    assert main(args) == 2
    assert (
        "engine=keras_tuner cannot run study search: its hyperband pruner"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "runs" / "keras_tuner").exists()


def complete_params(runs_dir, study: str) -> list[tuple]:
    """The values of every trial that ran to its end (finished, pruned, or failed, e.g. as an
    infeasible architecture); sampled repeats, never run, are left out."""
    return [
        tuple(sorted(t.params.items()))
        for t in load_trials(runs_dir, study)
        if t.state.name in ("COMPLETE", "PRUNED", "FAIL") and not t.user_attrs.get("duplicate")
    ]


def test_tpe_with_two_workers_and_after_a_resume_never_repeats_a_parameter_set(tmp_path):
    result = run_cli("study=search", "profile=smoke", "workers=2", f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    first = complete_params(tmp_path, "search")
    assert len(first) == 4 and len(set(first)) == 4  # the two workers sampled differently
    again = run_cli("study=search", "profile=smoke", "n_trials=6", f"runs_dir={tmp_path}")
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = complete_params(tmp_path, "search")
    assert len(resumed) == 6 and len(set(resumed)) == 6  # the resumed run did not start over


def test_a_sampler_that_repeats_runs_unseen_values_until_the_space_is_exhausted(
    tmp_path, monkeypatch, capsys
):
    from experiments.run import main
    from experiments.settings import config
    from experiments.settings import study_spec as space

    studies = tmp_path / "studies"
    shutil.copytree(config.STUDIES_DIR, studies)
    (studies / "two.yaml").write_text(
        "name: two\nsampler: {type: tpe, seed: 0}\nbudget: {n_trials: 5}\n"
        "space:\n  optimizer: {choices: [adamax, adam]}\n"
    )
    monkeypatch.setattr(config, "STUDIES_DIR", studies)
    monkeypatch.setattr(space, "STUDIES_DIR", studies)
    args = ["study=two", "profile=smoke", "n_trials=4", f"runs_dir={tmp_path / 'runs'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "the search space is exhausted" in out
    done = complete_params(tmp_path / "runs", "two")
    assert sorted(done) == [(("optimizer", "adam"),), (("optimizer", "adamax"),)]


@pytest.fixture
def runner_factory(tmp_path, smoke_data):
    """A TrialRunner on the smoke data with a real MLflow store in tmp_path."""
    from experiments.settings.config import compose
    from experiments.settings.study_spec import load_study
    from experiments.stores.store_urls import default_tracking_uri
    from experiments.tracking import Tracker
    from experiments.trials.trial_runner import TrialRunner

    def make(study: str, *overrides: str):
        cfg, profile = compose(
            ["profile=smoke", f"study={study}", f"runs_dir={tmp_path}", *overrides]
        )
        spec = load_study(study).for_profile(profile, cfg.trainer.epochs)
        tracker = Tracker(default_tracking_uri(tmp_path), study, tmp_path, "optuna")
        tracker.start_study_run("test", study, "fingerprint")
        data = smoke_data
        if cfg.data.image_size != data.image_size:
            from colorize.datasets import DatasetSpec, load_dataset

            data = load_dataset(DatasetSpec(image_size=cfg.data.image_size, crops_per_photo=2))
        return TrialRunner(cfg, spec, profile, data, tracker, tmp_path / "models"), tracker

    return make


def test_infeasible_architecture_is_a_failed_trial_with_its_reason(runner_factory):
    from experiments.trials.trial_runner import TrialFailed

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


@pytest.mark.parametrize("server_gone", [True, False])
def test_a_failed_write_mid_fit_sends_the_curve_only_where_the_server_answers(
    runner_factory, monkeypatch, server_gone
):
    """The second epoch's metrics cannot be written: the fit stops there. Where the MLflow
    server is gone, the study stops and the learning curve is not sent (each request to a
    server that is gone waits through MLflow's retries); where it answers, the first epoch's
    curve is kept and only the trial fails."""
    from experiments.common.errors import StudyStopped, TrialFailed

    runner, tracker = runner_factory("architecture")
    reason = "tracking_uri http://127.0.0.1:9 is unreachable" if server_gone else ""
    sent, write = [], tracker.log_metrics

    def failed_write(run_id, metrics, step=0):
        if step > 1:
            raise ConnectionError("log-batch failed")
        write(run_id, metrics, step)

    monkeypatch.setattr(tracker, "log_metrics", failed_write)
    monkeypatch.setattr(tracker, "server_gone", lambda: reason)
    monkeypatch.setattr(tracker, "unreachable", lambda: reason)
    monkeypatch.setattr(tracker, "log_figure", lambda run_id, figure, name: sent.append(name))
    with pytest.raises(StudyStopped if server_gone else TrialFailed, match=reason or "log-batch"):
        runner.run(0, {"kernel_size": 3, "padding": "same", "strides": 2})
    assert sent == ([] if server_gone else ["learning_curve.png"])


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
