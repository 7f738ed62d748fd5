"""The study command end to end at the smoke profile: real Optuna storage, real MLflow store."""

from __future__ import annotations

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments.tracking.tracker import EXPERIMENT_KIND_TAG
from tests.studies_helpers import (
    colorize_photo_with_registered_model,
    load_trials,
    mlflow_runs,
    native_log_lines,
    run_cli,
)


def load_study(runs_dir, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{runs_dir / 'optuna.db'}")


@pytest.fixture
def optimizers_study(smoke_optimizers_study):
    return smoke_optimizers_study


def test_study_runs_every_optimizer_and_logs_each_trial(optimizers_study):
    runs_dir, result = optimizers_study
    trials = load_trials(runs_dir, "optimizers")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["optimizer"] for t in complete) == ["adam", "adamax", "rmsprop"]
    runs = mlflow_runs(runs_dir, "optimizers")
    parents = runs[runs["tags.colorize.role"] == "study"]
    children = runs[runs["tags.colorize.role"] == "trial"]
    assert len(parents) == 1 and len(children) == len(trials) == 3
    assert set(children["tags.mlflow.parentRunId"]) == set(parents["run_id"])
    for column in ("optimizer", "kernel_size", "padding", "strides", "epochs"):
        assert children[f"params.{column}"].notna().all(), column
    assert set(children["params.optimizer"]) == {"adam", "adamax", "rmsprop"}
    assert set(children["status"]) == {"FINISHED"}
    client = MlflowClient()
    for run_id, trial in zip(children["run_id"], children["tags.colorize.trial"], strict=True):
        assert len(client.get_metric_history(run_id, "val_loss")) >= 2
        names = {a.path for a in client.list_artifacts(run_id)}
        assert {"samples.png", "learning_curve.png", "config.yaml"} <= names
        attrs = next(t for t in trials if t.number == int(trial)).user_attrs
        assert attrs["mlflow_run_id"] == run_id
    for metric in ("psnr", "ssim", "delta_e2000", "ab_auc", "colorfulness_pred"):
        assert children[f"metrics.{metric}"].notna().all(), metric
    assert "trials table" in result.stdout
    (given,) = [a for a in result.args if a.startswith("runs_dir=")]  # built once, then copied
    assert result.stdout.strip().splitlines()[-1] == (
        f"browse the runs: python -m experiments.ui {given}"
    )
    assert (runs_dir / "optimizers-optuna-trials.csv").exists()
    assert not native_log_lines(result.stderr)
    # a clean console: not one warning line (TensorFlow's retracing warning included)
    assert not [line for line in result.stderr.splitlines() if "warn" in line.lower()]
    names = sorted(children["tags.mlflow.runName"])  # run names that say what they are
    assert names == [
        "trial-000 adamax seed=0",
        "trial-001 adam seed=0",
        "trial-002 rmsprop seed=0",
    ]


def test_parent_run_records_config_versions_and_manifest(optimizers_study):
    runs_dir, _ = optimizers_study
    runs = mlflow_runs(runs_dir, "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    assert parent["params.profile"] == "smoke" and parent["params.dataset"] == "embedded"
    assert "sqlite" in parent["params.storage"] and parent["tags.git.commit"]
    assert parent["tags.version.keras"] and parent["tags.version.optuna"]
    names = {a.path for a in MlflowClient().list_artifacts(parent["run_id"])}
    assert {"config.yaml", "dataset_manifest.json", "study.yaml"} <= names


def test_study_opens_on_training_runs_with_system_metrics_and_named_objective(optimizers_study):
    runs_dir, _ = optimizers_study
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("optimizers")
    assert experiment.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    runs = mlflow_runs(runs_dir, "optimizers")
    children = runs[runs["tags.colorize.role"] == "trial"]
    for run_id in children["run_id"]:  # smoke trials last seconds: each still has samples
        metrics = client.get_run(run_id).data.metrics
        for key in ("cpu_utilization_percentage", "system_memory_usage_megabytes"):
            assert f"system/{key}" in metrics, (run_id, sorted(metrics))
        assert client.get_metric_history(run_id, "system/system_memory_usage_megabytes")
        assert metrics["system/system_memory_usage_megabytes"] > 0
    assert load_study(runs_dir, "optimizers").metric_names == ["val_loss"]


def test_rerun_adds_no_trial_and_no_run(optimizers_study):
    runs_dir, _ = optimizers_study
    before = len(mlflow_runs(runs_dir, "optimizers"))
    # as a study stored before experiments had a kind and objectives a name
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("optimizers").experiment_id
    client.delete_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG)
    study = load_study(runs_dir, "optimizers")
    study._storage.set_study_system_attr(study._study_id, "study:metric_names", None)
    assert study.metric_names is None
    again = run_cli("study=optimizers", "profile=smoke", f"runs_dir={runs_dir}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(load_trials(runs_dir, "optimizers")) == 3
    assert len(mlflow_runs(runs_dir, "optimizers")) == before
    kind = client.get_experiment(experiment_id).tags.get(EXPERIMENT_KIND_TAG)
    assert kind == "custom_model_development"
    assert load_study(runs_dir, "optimizers").metric_names == ["val_loss"]


def test_best_model_is_registered_and_colorizes(optimizers_study, tmp_path, embedded_photos):
    runs_dir, _ = optimizers_study
    _, out, result = colorize_photo_with_registered_model(
        runs_dir, tmp_path, embedded_photos["skimage:chelsea"]
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "cat.png").exists()
    # The downloaded copy of the model (25 MB at full size) is removed once it is loaded.
    assert not list((tmp_path / "tmp").glob("colorize-model-*"))


@pytest.mark.parametrize(
    "args,message",
    [
        (["study=nope"], "unknown study 'nope'"),
        (
            ["study=epochs", "trainer.optimizer=foo"],
            "trainer.optimizer=foo is not allowed; allowed: adamax",
        ),
        (["trainer.epochs=abc"], "trainer.epochs=abc is not an integer"),
        (["trainer.epochs=0"], "trainer.epochs=0 is out of range; allowed: 1 to 100000"),
        (["trainer.mixed_precision=maybe"], "trainer.mixed_precision=maybe is not true or false"),
        (["data.val_photos=11"], "data.val_photos=11 leaves no training photo"),
        (
            ["data.source=flickr"],
            "data.source=flickr is not allowed; allowed: embedded, landscapes",
        ),
        (
            ["study=optimizers", "trainer.optimizer=adam"],
            "trainer.optimizer is searched by study optimizers",
        ),
        (["name=my study"], "name=my study is not allowed"),
        (["trainer.epoch=3"], "unknown key 'trainer.epoch' (did you mean trainer.epochs?)"),
        (["profile=huge"], "unknown profile 'huge'"),
        (["tuner=sklearn"], "tuner=sklearn is not allowed"),
        (["model.padding=full"], "model.padding=full is not allowed; allowed: same, valid"),
        (["data.image_size=36"], "multiple of 8"),
        (["oops"], "expected key=value"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, tmp_path):
    result = run_cli("profile=smoke", f"runs_dir={tmp_path}", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]


def test_missing_training_or_test_folder_is_a_one_line_error_before_any_work(tmp_path, capsys):
    result = run_cli("profile=smoke", f"runs_dir={tmp_path}", f"data.train_dir={tmp_path}/none")
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == f"error: training folder not found: {tmp_path}/none"
    )
    assert "Traceback" not in result.stderr
    from experiments.run import main

    assert main(["profile=smoke", f"runs_dir={tmp_path}", f"data.test_dir={tmp_path}/none"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"error: data.test_dir: test folder not found: {tmp_path}/none"
    assert not (tmp_path / "optuna.db").exists()  # refused before the first trial


def test_a_runs_dir_that_cannot_be_written_is_a_one_line_error_before_any_work(tmp_path):
    """`runs_dir` under a file, and in a folder without write permission (as root, run without
    root's power to write anywhere): one line naming why (exit 2), nothing written."""
    import sys

    from tests.test_bad_inputs import run_without_root_powers

    (tmp_path / "a-file").write_text("")
    under_a_file = run_cli("profile=smoke", f"runs_dir={tmp_path / 'a-file' / 'runs'}")
    assert under_a_file.returncode == 2 and "Traceback" not in under_a_file.stderr
    assert under_a_file.stderr.strip() == (
        f"error: runs_dir {tmp_path / 'a-file' / 'runs'} cannot be written: "
        f"{tmp_path / 'a-file'} is not a folder"
    )
    # /proc says it is writable, but no folder can be made there
    proc = run_cli("profile=smoke", "runs_dir=/proc/colorize-runs")
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: runs_dir /proc/colorize-runs cannot be written: No such file or directory"
    )
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_without_root_powers(
            [sys.executable, "-m", "experiments.run", "profile=smoke", f"runs_dir={locked}"]
        )
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: runs_dir {locked} cannot be written: no permission to write in {locked}"
    )
    assert list(locked.iterdir()) == []


def test_help_lists_studies_profiles_and_keys():
    result = run_cli("--help")
    assert result.returncode == 0
    for word in (
        "optimizers",
        "epochs",
        "architecture",
        "paper",
        "search",
        "smoke",
        "quick",
        "trainer.optimizer",
        "data.train_dir",
        "runs_dir",
        "data.source=embedded; one of embedded, landscapes",
    ):
        assert word in result.stdout, word
    # each key shows its value at the default profile and the other profiles' where they differ
    assert "  data.image_size=64 (profile paper 256, smoke 16)" in result.stdout
    assert "  trainer.epochs=20 (profile paper 500, smoke 2)" in result.stdout


def test_cfg_prints_the_resolved_config_without_running(tmp_path):
    result = run_cli(
        "study=epochs",
        "profile=smoke",
        "trainer.learning_rate=0.01",
        "--cfg",
        f"runs_dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    assert "learning_rate: 0.01" in result.stdout and "image_size: 16" in result.stdout
    assert "optimizer: adamax" in result.stdout  # the epochs study fixes the optimizer
    assert not (tmp_path / "optuna.db").exists()
    fixed = run_cli("study=epochs", "profile=smoke", "trainer.optimizer=adam", "--cfg")
    assert "optimizer: adam\n" in fixed.stdout  # an override of a fixed value wins


def test_best_model_colorizes_the_test_folder_into_results(optimizers_study, tmp_path):
    import numpy as np
    from PIL import Image

    runs_dir, _ = optimizers_study
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    gray = np.tile(np.linspace(0, 255, 70, dtype=np.uint8), (50, 1))
    Image.fromarray(gray).save(test_dir / "gray.png")
    result = run_cli(
        "study=optimizers",
        "profile=smoke",
        f"runs_dir={runs_dir}",
        f"data.test_dir={test_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = runs_dir / "results" / "optimizers" / "gray.png"  # under runs_dir, not the cwd
    assert out.exists() and Image.open(out).size == (70, 50)
    assert not (tmp_path / "results").exists()


def test_dataset_is_converted_once_into_the_runs_cache(optimizers_study):
    runs_dir, _ = optimizers_study
    entries = [p for p in (runs_dir / "cache").iterdir() if p.is_dir()]
    assert len(entries) == 1 and entries[0].name.startswith("embedded-16-")
    assert (entries[0] / "meta.json").exists() and (entries[0] / "train_l.npy").exists()
