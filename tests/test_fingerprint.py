"""One study, one configuration: a rerun with settings that change results is refused before any
training, naming each key; `name=` runs them as a separate study beside the first; a store from
before fingerprints is adopted; the report never mixes settings. Real stores, in-process runs."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments.run import main as run_main
from tests.studies_helpers import copy_stores, load_trials, mlflow_runs

SMOKE = ["study=optimizers", "profile=smoke"]


@pytest.fixture
def runs_dir(smoke_optimizers_study, tmp_path) -> Path:
    """A copy of the finished smoke optimizers study's stores, to change freely."""
    return copy_stores(smoke_optimizers_study[0], tmp_path / "runs")


def snapshot(runs_dir: Path) -> tuple:
    trials = [
        (t.number, t.state.name, t.datetime_complete) for t in load_trials(runs_dir, "optimizers")
    ]
    return trials, len(mlflow_runs(runs_dir, "optimizers"))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("profile=quick", "profile smoke -> quick"),
        ("data.image_size=8", "data.image_size 16 -> 8"),
        ("data.crops_per_photo=3", "data.crops_per_photo 2 -> 3"),
        ("data.l_scaling=centered", "data.l_scaling unit -> centered"),
        ("model.kernel_size=5", "model.kernel_size 3 -> 5"),
        ("model.architecture=unet", "model.architecture paper -> unet"),
        ("trainer.epochs=3", "trainer.epochs 2 -> 3"),
        ("trainer.learning_rate=0.01", "trainer.learning_rate 0.001 -> 0.01"),
        ("trainer.mixed_precision=true", "trainer.mixed_precision False -> True"),
    ],
    ids=lambda value: value.split("=")[0] if "=" in value else "",
)
def test_a_setting_that_changes_results_is_refused_naming_it(runs_dir, override, named, capsys):
    before = snapshot(runs_dir)
    assert run_main([*SMOKE, f"runs_dir={runs_dir}", override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: study 'optimizers' in ")
    assert named in err and "as a separate study with name=optimizers-" in err
    assert snapshot(runs_dir) == before  # refused before anything was written


def test_a_changed_data_source_or_study_definition_is_refused(
    runs_dir, photo_folder, tmp_path, monkeypatch, capsys
):
    assert run_main([*SMOKE, f"runs_dir={runs_dir}", f"data.train_dir={photo_folder}"]) == 2
    err = capsys.readouterr().err
    assert "data.source embedded -> folder" in err and "data.content " in err
    # the study YAML's space changed (a third seed kept by a profile that keeps every seed)
    from experiments.settings import config
    from experiments.settings import study_spec as space

    studies = tmp_path / "studies"
    shutil.copytree(config.STUDIES_DIR, studies)
    text = (studies / "optimizers.yaml").read_text()
    (studies / "optimizers.yaml").write_text(
        text.replace("[adamax, adam, rmsprop]", "[adamax, adam]")
    )
    monkeypatch.setattr(config, "STUDIES_DIR", studies)
    monkeypatch.setattr(space, "STUDIES_DIR", studies)
    assert run_main([*SMOKE, f"runs_dir={runs_dir}"]) == 2
    assert "study.space " in capsys.readouterr().err


def test_budgets_and_plumbing_are_not_part_of_it(runs_dir, capsys):
    before = snapshot(runs_dir)
    assert run_main([*SMOKE, f"runs_dir={runs_dir}", "workers=2", "heartbeat=5"]) == 0
    assert snapshot(runs_dir)[0] == before[0]  # nothing left to run, nothing refused


def test_name_runs_a_second_study_beside_the_first_and_the_report_builds_both(runs_dir, tmp_path):
    from experiments.report.__main__ import main as report_main

    assert (
        run_main([*SMOKE, f"runs_dir={runs_dir}", "name=optimizers-b", "data.crops_per_photo=3"])
        == 0
    )
    assert len(load_trials(runs_dir, "optimizers")) == 3
    assert len(load_trials(runs_dir, "optimizers-b")) == 3
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    assert {m.name for m in client.search_registered_models()} == {"optimizers", "optimizers-b"}
    reports = tmp_path / "reports"
    assert (
        report_main(
            ["study=optimizers,optimizers-b", f"runs_dir={runs_dir}", f"reports_dir={reports}"]
        )
        == 0
    )
    assert (reports / "optimizers.pdf").exists() and (reports / "optimizers-b.pdf").exists()


def test_a_store_from_before_fingerprints_is_adopted_with_a_notice(runs_dir, capsys):
    with sqlite3.connect(runs_dir / "optuna.db") as connection:
        connection.execute("DELETE FROM study_user_attributes WHERE key = 'fingerprint'")
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    runs = mlflow_runs(runs_dir, "optimizers")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]["run_id"]
    client.delete_tag(parent, "colorize.fingerprint")
    assert run_main([*SMOKE, f"runs_dir={runs_dir}"]) == 0
    assert "made before fingerprints: adopted with these settings" in capsys.readouterr().out
    study = optuna.load_study(
        study_name="optimizers", storage=f"sqlite:///{runs_dir / 'optuna.db'}"
    )
    assert study.user_attrs["fingerprint"]["profile"] == "smoke"
    assert client.get_run(parent).data.tags["colorize.fingerprint"]


def test_another_backend_or_package_version_is_reported_not_refused(runs_dir, capsys):
    study = optuna.load_study(
        study_name="optimizers", storage=f"sqlite:///{runs_dir / 'optuna.db'}"
    )
    study.set_user_attr("environment", {**study.user_attrs["environment"], "keras.backend": "jax"})
    assert run_main([*SMOKE, f"runs_dir={runs_dir}"]) == 0
    assert (
        "continues on another environment: keras.backend jax -> tensorflow"
        in capsys.readouterr().out
    )


def test_the_report_refuses_trials_of_two_fingerprints(runs_dir, tmp_path, capsys):
    from experiments.report.__main__ import main as report_main

    runs = mlflow_runs(runs_dir, "optimizers")
    trial = runs[runs["tags.colorize.role"] == "trial"].iloc[0]["run_id"]
    MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}").set_tag(
        trial, "colorize.fingerprint", "0" * 16
    )
    assert (
        report_main(["study=optimizers", f"runs_dir={runs_dir}", f"reports_dir={tmp_path / 'r'}"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds trials of different settings (2 fingerprints" in err
    assert not (tmp_path / "r").exists()


def test_trials_of_different_settings_are_refused_even_without_fingerprints():
    import pandas as pd

    from experiments.common.errors import UsageError
    from experiments.report.stored_study import check_one_configuration

    trials = pd.DataFrame({"image_size": [64, 64, 256], "optimizer": ["adam", "adamax", "adam"]})
    with pytest.raises(UsageError, match="image_size 256 vs 64"):
        check_one_configuration("optimizers", trials, ["optimizer"])
    check_one_configuration("optimizers", trials.iloc[:2], ["optimizer"])  # one setting: fine


# --- what the fingerprint covers: the configuration schema decides -------------------------------


# The fingerprint of the architecture study at its defaults holds exactly these keys, written out
# by hand: every setting that is not plumbing and that the study does not search (its space
# covers kernel_size, padding and strides), the profile's epoch scale, the photos' content and
# the study's definition. Each setting's own effect: tests/test_settings_reach.py.
ARCHITECTURE_FINGERPRINT = {
    "profile", "race", "max_seeds", "profile.epoch_scale", "data.content",
    "data.source", "data.image_size", "data.crops_per_photo", "data.val_photos",
    "data.val_fraction", "data.split_seed", "data.l_scaling",
    "model.architecture", "model.batch_norm",
    "trainer.optimizer", "trainer.learning_rate", "trainer.batch_size", "trainer.epochs",
    "trainer.patience", "trainer.seed", "trainer.loss", "trainer.rebalance",
    "trainer.temperature", "trainer.mixed_precision",
    "study.metric", "study.direction", "study.sampler", "study.pruner", "study.space",
}  # fmt: skip


def test_the_fingerprint_holds_the_result_settings_and_no_plumbing():
    from experiments.settings import config
    from experiments.settings.fingerprint import make_fingerprint
    from experiments.settings.study_spec import load_study

    cfg, profile = config.compose(["study=architecture"])
    values = make_fingerprint(cfg, load_study("architecture"), 1.0, "k" * 16).values
    assert set(values) == ARCHITECTURE_FINGERPRINT
    assert values["data.source"] == "embedded" and values["data.content"] == "k" * 16
    folder, _ = config.compose(["study=architecture", "data.train_dir=/photos"])
    on_folder = make_fingerprint(folder, load_study("architecture"), 1.0, "k" * 16).values
    assert on_folder["data.source"] == "folder" and "/photos" not in str(on_folder)


def test_the_archive_sha256_changes_the_fingerprint():
    from experiments.settings import config
    from experiments.settings.fingerprint import make_fingerprint
    from experiments.settings.study_spec import load_study

    spec = load_study("optimizers")
    prints = []
    for digest in ("a" * 64, "b" * 64):
        cfg, _ = config.compose(
            ["study=optimizers", f"data.source=url:http://h/p.zip#sha256={digest}"]
        )
        prints.append(make_fingerprint(cfg, spec, 1.0, "k" * 16))
    assert prints[0].hash != prints[1].hash
    (line,) = prints[1].differences(prints[0].values)
    assert (
        line
        == f"data.source url:http://h/p.zip#sha256={'a' * 64} -> url:http://h/p.zip#sha256={'b' * 64}"
    )


def test_a_study_stored_before_a_setting_existed_is_adopted_under_its_own_hash():
    from experiments.settings import config
    from experiments.settings.fingerprint import make_fingerprint
    from experiments.settings.study_spec import load_study

    cfg, profile = config.compose(["study=optimizers"])
    current = make_fingerprint(cfg, load_study("optimizers"), 1.0, "k" * 16)
    older = {k: v for k, v in current.values.items() if k != "data.split_seed"}  # as if new
    assert current.differences(older) == []  # at its default: the same study
    adopted = current.adopting(older)
    assert adopted.values == older and adopted.hash != current.hash
    other_split = config.with_values(cfg, {"data.split_seed": 9})
    changed = make_fingerprint(other_split, load_study("optimizers"), 1.0, "k" * 16)
    assert changed.differences(older) == ["data.split_seed (unset) -> 9"]
    assert changed.adopting(older) is changed


def test_cfg_ends_with_the_fingerprint_and_whether_the_stored_study_matches(runs_dir, capsys):
    assert run_main([*SMOKE, f"runs_dir={runs_dir}", "--cfg"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("# fingerprint ") and "runs_dir" in lines[-2]
    assert lines[-1].endswith(": matches; a run continues it"), lines[-1]
    digest = lines[-2].split()[2].rstrip(":")
    assert MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").search_runs(
        mlflow_experiment_ids(runs_dir),
        f"tags.`colorize.fingerprint` = '{digest}'",
    )
    assert run_main([*SMOKE, f"runs_dir={runs_dir}", "trainer.patience=9", "--cfg"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "differs (trainer.patience" in last and last.endswith("a run is refused")
    assert run_main([*SMOKE, f"runs_dir={runs_dir / 'none'}", "--cfg"]) == 0
    assert capsys.readouterr().out.strip().endswith("none yet; a run starts it")
    assert not (runs_dir / "none").exists()  # --cfg creates nothing


def mlflow_experiment_ids(runs_dir: Path) -> list[str]:
    return [
        e.experiment_id
        for e in MlflowClient(f"sqlite:///{runs_dir}/mlflow.db").search_experiments()
    ]
