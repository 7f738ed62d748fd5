"""Studies of several objectives end to end at the smoke profile: the `pareto` study run through
the real command (real Optuna storage, MLflow store and Keras fits), its Pareto front printed,
tagged and registered, extended by a rerun, killed with `kill -9` and finished by an immediate
rerun, a grid of several objectives, and the report's `pareto` kind read back with pdftotext."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient

from experiments.analysis.pareto import dominates, front_aliases, pareto_front
from experiments.run import main as run_main
from experiments.settings import config
from experiments.settings import study_spec as space
from tests.needs import needs
from tests.studies_helpers import (
    colorize_photo_with_registered_model,
    load_trials,
    mlflow_runs,
    run_cli,
    run_report,
)
from tests.test_reliability import checkpointed, kill_group, wait_for_line, wait_until

SMOKE = ["study=pareto", "profile=smoke"]
OBJECTIVES = ["delta_e2000", "colorfulness_gap"]
needs_poppler = needs(
    "poppler-utils (pdftotext) is not installed: apt-get install poppler-utils",
    shutil.which("pdftotext") is not None,
)


def optuna_front(runs_dir: Path, study: str) -> list[int]:
    """The front as Optuna itself finds it (`best_trials`), by the first objective: an
    independent check of `experiments.analysis.pareto`."""
    found = optuna.load_study(
        study_name=study, storage=f"sqlite:///{runs_dir / 'optuna.db'}"
    ).best_trials
    return [t.number for t in sorted(found, key=lambda t: (t.values, t.number))]


def trial_runs(runs_dir: Path, study: str):
    runs = mlflow_runs(runs_dir, study)
    return runs[runs["tags.colorize.role"] == "trial"]


def check_front_is_recorded(runs_dir: Path, study: str) -> list[int]:
    """The front Optuna sees is tagged on the runs and registered with its aliases, the
    champion (`pareto-1`) being the newest version; returns the front."""
    front = optuna_front(runs_dir, study)
    assert front, "premise: a finished trial"
    children = trial_runs(runs_dir, study)
    finished = children[children["status"] == "FINISHED"]
    tagged = finished[finished["tags.pareto_optimal"] == "true"]
    assert sorted(int(n) for n in tagged["tags.colorize.trial"]) == sorted(front)
    assert set(finished["tags.pareto_optimal"]) <= {"true", "false"}  # every finished trial
    runs = mlflow_runs(runs_dir, study)
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    assert parent["tags.pareto.front"] == ",".join(map(str, front))
    client = MlflowClient(f"sqlite:///{runs_dir / 'mlflow.db'}")
    aliases = client.get_registered_model(study).aliases
    assert set(aliases) == {f"pareto-{n}" for n in range(1, len(front) + 1)} | {"champion"}
    run_of = dict(
        zip(children["tags.colorize.trial"].astype(int), children["run_id"], strict=True)
    )
    for rank, number in enumerate(front, start=1):
        version = client.get_model_version(study, aliases[f"pareto-{rank}"])
        assert version.run_id == run_of[number], (rank, number)
    assert aliases["champion"] == aliases["pareto-1"]
    versions = client.search_model_versions(f"name = '{study}'")
    assert max(int(v.version) for v in versions) == int(aliases["champion"])  # = latest
    return front


@pytest.fixture(scope="module")
def pareto_study(tmp_path_factory):
    """`python -m experiments.run study=pareto profile=smoke n_trials=4`: (runs_dir, result)."""
    runs_dir = tmp_path_factory.mktemp("smoke-pareto")
    result = run_cli(*SMOKE, "n_trials=4", f"runs_dir={runs_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return runs_dir, result


def test_the_front_is_every_trial_no_other_beats_on_both_objectives():
    points = {0: (1.0, 5.0), 1: (2.0, 2.0), 2: (3.0, 3.0), 3: (1.0, 5.0), 4: (5.0, 1.0)}
    directions = ["minimize", "minimize"]
    assert pareto_front(points, directions) == [0, 3, 1, 4]  # ties both stay; 2 is beaten by 1
    assert dominates((2.0, 2.0), (3.0, 3.0), directions)
    assert not dominates((1.0, 5.0), (1.0, 5.0), directions)
    assert pareto_front(points, ["minimize", "maximize"]) == [0, 3]
    assert pareto_front({0: (float("nan"), 1.0), 1: (2.0, 2.0)}, directions) == [1]
    assert front_aliases([4, 1]) == {"pareto-1": 4, "pareto-2": 1, "champion": 4}


def test_a_multi_objective_study_finishes_prints_tags_and_registers_its_front(pareto_study):
    runs_dir, result = pareto_study
    study = optuna.load_study(study_name="pareto", storage=f"sqlite:///{runs_dir / 'optuna.db'}")
    assert [d.name for d in study.directions] == ["MINIMIZE", "MINIMIZE"]
    assert study.metric_names == OBJECTIVES  # optuna-dashboard names both
    complete = [t for t in study.get_trials() if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and all(len(t.values) == 2 for t in complete)
    children = trial_runs(runs_dir, "pareto")
    for trial in complete:  # each objective is the trial's own metric
        run = children[children["run_id"] == trial.user_attrs["mlflow_run_id"]].iloc[0]
        assert trial.values == [run["metrics.delta_e2000"], run["metrics.colorfulness_gap"]]
    front = check_front_is_recorded(runs_dir, "pareto")
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Pareto front of "))
    assert lines[start].startswith(
        f"Pareto front of delta_e2000 (minimize), colorfulness_gap (minimize): {len(front)} of "
        "4 finished trial(s)"
    )
    for rank, number in enumerate(front, start=1):
        line = lines[start + rank]
        assert line.startswith(f"  pareto-{rank}: trial {number}: delta_e2000 ")
        assert "colorfulness_gap " in line and "loss=" in line and "learning_rate=" in line
    assert "best trial" not in result.stdout  # no single best
    assert "models:/pareto@champion" in result.stdout
    assert not [line for line in result.stderr.splitlines() if "warn" in line.lower()]


def test_the_champion_colorizes_as_models_latest(pareto_study, tmp_path, embedded_photos):
    runs_dir, _ = pareto_study
    _, out, result = colorize_photo_with_registered_model(
        runs_dir, tmp_path, embedded_photos["skimage:chelsea"], model="pareto"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "cat.png").exists()


@needs_poppler
def test_the_pareto_report_shows_the_front_plot_table_and_samples(pareto_study, tmp_path):
    runs_dir, _ = pareto_study
    result = run_report("study=pareto", f"runs_dir={runs_dir}", f"reports_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    text = subprocess.run(
        ["pdftotext", "-raw", str(tmp_path / "pareto.pdf"), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    front = optuna_front(runs_dir, "pareto")
    flat = " ".join(text.split())
    assert "pareto: the Pareto front of delta_e2000, colorfulness_gap" in flat
    assert f"{len(front)} of 4 finished trial(s) are" in flat
    assert "The Pareto front" in text and "Pareto-optimal trials" in text  # plot and samples
    assert "objectives (Pareto front) delta_e2000 (minimize), colorfulness_gap (minimize)" in flat
    children = trial_runs(runs_dir, "pareto")
    for rank, number in enumerate(front, start=1):
        run = children[children["tags.colorize.trial"] == str(number)].iloc[0]
        row = f"pareto-{rank} {number} "
        assert row in text, row  # the table's row: alias, trial, settings, metrics
        assert f"{run['metrics.delta_e2000']:.2f}" in text.split(row, 1)[1].splitlines()[0]
        assert f"pareto-{rank}: trial {number}" in text  # its sample strip's caption
    import pandas as pd

    table = pd.read_csv(tmp_path / "pareto.csv")
    assert list(table["trial"]) == front and list(table["alias"]) == [
        f"pareto-{n}" for n in range(1, len(front) + 1)
    ]


def test_a_larger_budget_resumes_the_study_and_moves_the_aliases(pareto_study, tmp_path):
    from tests.studies_helpers import copy_stores

    runs_dir = copy_stores(pareto_study[0], tmp_path / "runs")
    before = {t.number: t.datetime_complete for t in load_trials(runs_dir, "pareto")}
    result = run_cli(*SMOKE, "n_trials=6", f"runs_dir={runs_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    after = load_trials(runs_dir, "pareto")
    assert sum(t.state.name == "COMPLETE" for t in after) == 6
    for trial in after:  # finished trials untouched
        if trial.number in before:
            assert trial.datetime_complete == before[trial.number]
    check_front_is_recorded(runs_dir, "pareto")
    again = run_cli(*SMOKE, "n_trials=6", f"runs_dir={runs_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already registered" in again.stdout
    assert len(load_trials(runs_dir, "pareto")) == len(after)


def test_a_multi_objective_study_killed_mid_trial_finishes_on_an_immediate_rerun(tmp_path):
    """`kill -9` of the process group in trial 1's second epoch; the same command at once,
    with the default heartbeat, retries that trial from its checkpoint and finishes."""
    args = [*SMOKE, "n_trials=3", "trainer.epochs=3", "trainer.patience=3",
            "trainer.checkpoint_every=0", f"runs_dir={tmp_path}"]  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )  # fmt: skip
    wait_for_line(process, "trial 1 epoch 1/3")
    wait_until(lambda: checkpointed(tmp_path, 1))  # its first epoch is saved: kill in the next
    kill_group(process)
    killed = next(t for t in load_trials(tmp_path, "pareto") if t.number == 1)
    assert killed.state.name == "RUNNING"  # premise: killed mid-trial
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "waiting" not in result.stdout
    trials = load_trials(tmp_path, "pareto")
    assert not [t for t in trials if t.state.name == "RUNNING"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    retry = next(t for t in complete if t.system_attrs.get("failed_trial") == 1)
    assert retry.params == killed.params and len(retry.values) == 2
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(retry.user_attrs["mlflow_run_id"])
    assert int(run.data.tags["resumed_from_epoch"]) >= 1  # from its checkpoint
    runs = mlflow_runs(tmp_path, "pareto")
    assert "RUNNING" not in set(runs["status"])
    assert runs[runs["tags.colorize.role"] == "study"]["status"].tolist() == ["FINISHED"]
    check_front_is_recorded(tmp_path, "pareto")


@pytest.fixture
def grid_of_two_objectives(tmp_path, monkeypatch):
    """A study file of our own: a grid over the optimizer, ΔE2000 against PSNR both minimized
    (they pull apart, so the front has room for several trials)."""
    folder = tmp_path / "studies"
    shutil.copytree(config.STUDIES_DIR, folder)
    monkeypatch.setattr(config, "STUDIES_DIR", folder)
    monkeypatch.setattr(space, "STUDIES_DIR", folder)
    (folder / "twogrid.yaml").write_text(
        "name: twogrid\n"
        "objectives:\n"
        "  - {metric: delta_e2000, direction: minimize}\n"
        "  - {metric: psnr, direction: minimize}\n"
        "sampler: {type: grid}\n"
        "space:\n"
        "  optimizer: {choices: [adamax, adam, rmsprop]}\n"
    )
    return folder


def test_a_grid_of_several_objectives_runs_every_point_once(
    grid_of_two_objectives, tmp_path, capsys
):
    runs_dir = tmp_path / "runs"
    assert run_main(["study=twogrid", "profile=smoke", f"runs_dir={runs_dir}"]) == 0
    trials = load_trials(runs_dir, "twogrid")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["optimizer"] for t in complete) == ["adam", "adamax", "rmsprop"]
    points = {t.number: (t.values[0], t.values[1]) for t in complete}
    front = check_front_is_recorded(runs_dir, "twogrid")
    for number in front:  # no trial beats a front trial on both
        assert not any(
            dominates(points[o], points[number], ["minimize", "minimize"]) for o in points
        )
    assert "Pareto front of delta_e2000 (minimize), psnr (minimize)" in capsys.readouterr().out


def test_keras_tuner_refuses_several_objectives_in_one_line(tmp_path, capsys):
    assert run_main([*SMOKE, "engine=keras_tuner", f"runs_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(
        "error: engine=keras_tuner cannot run study pareto: it has several objectives "
        "(delta_e2000, colorfulness_gap)"
    )
    assert "engine=optuna" in err
    assert not (tmp_path / "keras_tuner").exists()


def test_cfg_and_help_show_the_objectives_and_the_fingerprint_covers_them(tmp_path, capsys):
    assert run_main([*SMOKE, "--cfg", f"runs_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "# objectives delta_e2000 (minimize), colorfulness_gap (minimize)" in out
    assert "'type': 'nsga2'" in out
    assert run_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "objectives (Pareto front): delta_e2000 (minimize), colorfulness_gap (minimize)" in out
    assert "objective: val_loss (minimize)" in out

    from dataclasses import replace

    from experiments.settings.fingerprint import make_fingerprint
    from experiments.settings.study_spec import Objective, load_study

    cfg, _ = config.compose(SMOKE)
    spec = load_study("pareto")
    current = make_fingerprint(cfg, spec, 1.0, "k" * 16)
    turned = replace(
        spec,
        objectives=[spec.objectives[0], Objective("colorfulness_gap", "maximize")],
    )
    assert current.differences(make_fingerprint(cfg, turned, 1.0, "k" * 16).values) == [
        'study.objectives [["delta_e2000","minimize"],["colorfulness_gap","maximize"]] -> '
        '[["delta_e2000","minimize"],["colorfulness_gap","minimize"]]'
    ]
    one_cfg, _ = config.compose(["study=optimizers"])
    single = make_fingerprint(one_cfg, load_study("optimizers"), 1.0, "k" * 16)
    assert "study.objectives" not in single.values  # one objective: stored hashes unchanged


def test_front_aliases_move_with_the_front_and_the_champion_stays_the_latest(tmp_path):
    """A real MLflow registry: an earlier front of three left pareto-1..3; the new front (the
    old second first, then the old first) gets pareto-1..2 and champion, pareto-3 goes, and the
    champion, registered before the others, is copied into the newest version."""
    from experiments.flow.pareto_finish import set_front_aliases
    from experiments.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "moving", tmp_path, "optuna")
    client = tracker.client
    client.create_registered_model("moving")
    runs = [client.create_run(tracker.experiment_id).info for _ in range(3)]
    versions = [
        str(client.create_model_version("moving", f"{run.artifact_uri}/model", run.run_id).version)
        for run in runs
    ]  # trial n -> version n + 1
    set_front_aliases(tracker, "moving", [2, 1, 0], dict(enumerate(versions)))
    assert tracker.model_aliases("moving") == {
        "pareto-1": "3", "pareto-2": "2", "pareto-3": "1", "champion": "3",
    }  # fmt: skip
    set_front_aliases(tracker, "moving", [1, 2], dict(enumerate(versions)))
    aliases = tracker.model_aliases("moving")
    assert set(aliases) == {"pareto-1", "pareto-2", "champion"}
    assert aliases["champion"] == aliases["pareto-1"] == "4"  # a copy of trial 1's version 2
    copied = client.get_model_version("moving", "4")
    assert (copied.run_id, copied.source) == (runs[1].run_id, f"{runs[1].artifact_uri}/model")
    assert aliases["pareto-2"] == "3"
    assert tracker.model_version("moving", None) == "4"


@pytest.mark.parametrize("sampler", [{"type": "nsga2", "seed": 0, "population_size": 4},
                                     {"type": "tpe", "seed": 0, "n_startup_trials": 3}])  # fmt: skip
def test_nsga2_and_tpe_search_the_pareto_space_for_two_objectives(sampler):
    """The samplers a multi-objective study may name, over the pareto study's space (choices of
    text and booleans, plain and log ranges), on a toy pair of objectives that pull apart."""
    from dataclasses import replace

    from experiments.engines.optuna_sampling import make_sampler, suggest
    from experiments.settings.study_spec import load_study

    spec = replace(load_study("pareto"), sampler=sampler)
    study = optuna.create_study(directions=spec.directions, sampler=make_sampler(spec))

    def objective(trial):
        values = suggest(trial, spec)
        assert set(values) == set(spec.space) and isinstance(values["batch_norm"], bool)
        return values["learning_rate"], 1.0 / values["learning_rate"] + values["rebalance"]

    study.optimize(objective, n_trials=12)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 12
    rates = [t.params["learning_rate"] for t in study.trials]
    assert all(1e-4 <= r <= 1e-2 for r in rates)  # NSGA-II's children may repeat a parent's
    assert sorted(t.number for t in study.best_trials) == sorted(
        pareto_front({t.number: t.values for t in study.trials}, spec.directions)
    )
