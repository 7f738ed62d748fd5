"""Racing a study's seeds: the race judged from stored trials (no Keras), then real smoke races
through the command, killed with `kill -9` mid-race and resumed with no seed repeated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from colorize import sequential
from experiments.common.errors import UsageError
from experiments.engines import racing
from experiments.settings import config
from experiments.settings.study_spec import load_study
from tests.studies_helpers import load_trials, mlflow_runs, run_cli

MEANS = {"adamax": 0.49, "adam": 0.47, "rmsprop": 0.436}  # the paper's ordering and size


def _raced(*overrides: str, study: str = "optimizers", profile: str = "quick"):
    cfg, prof = config.compose([f"study={study}", f"profile={profile}", *overrides])
    return racing.raced(cfg, load_study(study).for_profile(prof, cfg.trainer.epochs))


def _trial(optimizer: str, seed: int, accuracy: float, loss: float, state="COMPLETE"):
    metrics = {"val_accuracy": accuracy, "val_loss": loss}
    return racing.TrialInfo({"optimizer": optimizer, "seed": seed}, state, metrics)


def _race(spec, noise: float, rng, fail=None) -> tuple[racing.RaceState, list]:
    """Run a simulated race to its end: each round's trials finish at once."""
    race = racing.Race(spec)
    trials, rounds = [], []

    def add(optimizer, seed):
        state = "FAIL" if fail and (optimizer, seed) == fail else "COMPLETE"
        accuracy = MEANS[optimizer] + rng.normal(0, noise)
        trials.append(_trial(optimizer, seed, accuracy, 1 - accuracy, state))

    for optimizer in MEANS:
        for seed in spec.race_start_seeds:
            add(optimizer, seed)
    while True:
        state = race.state(trials, rounds)
        if state.next_round is None:
            return state, trials
        rounds.append(state.next_round)
        for group in state.next_round["groups"]:
            add(dict(group)["optimizer"], state.next_round["seed"])


def test_raced_study_starts_with_its_grid_and_may_reach_the_cap():
    spec = _raced("race=true", "max_seeds=8")
    assert spec.grid() == {"optimizer": ["adamax", "adam", "rmsprop"], "seed": [0, 1, 2]}
    assert spec.space["seed"].choices == list(range(8))
    assert [c.name for c in spec.comparisons] == ["adamax vs rmsprop", "best vs runner-up"]
    unraced = _raced()
    assert unraced.race_start_seeds is None and unraced.space["seed"].choices == [0, 1, 2]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["max_seeds=8"], "max_seeds=8 caps a race; add race=true"),
        (["race=true", "engine=keras_tuner"], "race=true needs engine=optuna"),
        (["race=true", "max_seeds=2"], "max_seeds=2 is out of range"),
    ],
)
def test_racing_asked_wrongly_is_a_one_line_error(overrides, message):
    with pytest.raises(UsageError, match=message):
        _raced(*overrides)


def test_a_study_without_comparisons_cannot_race():
    with pytest.raises(UsageError, match="declares no comparisons"):
        _raced("race=true", study="epochs")


def test_a_comparison_of_a_group_the_study_lacks_is_refused_when_racing(tmp_path, monkeypatch):
    from experiments.settings import study_spec

    studies = tmp_path / "studies"
    studies.mkdir()
    text = (config.STUDIES_DIR / "optimizers.yaml").read_text()
    (studies / "optimizers.yaml").write_text(
        text.replace("[adamax, adam, rmsprop]", "[adamax, adam]")
    )
    monkeypatch.setattr(study_spec, "STUDIES_DIR", studies)
    load_study("optimizers")  # without racing, the study runs as before
    with pytest.raises(
        UsageError, match="'adamax vs rmsprop' names optimizer=rmsprop, not a group"
    ):
        _raced("race=true")


def test_a_clear_difference_stops_early_and_a_decided_group_gets_no_more_seeds():
    spec = _raced("race=true", "max_seeds=10")
    state, trials = _race(spec, noise=0.01, rng=np.random.default_rng(1))
    assert state.over and all(c.decided for c in state.looks[-1])
    assert len(state.rounds) < 7  # decided before the cap
    for planned in state.rounds:  # only groups of undecided comparisons got a seed
        in_play = {dict(g)["optimizer"] for g in planned["groups"]}
        assert in_play <= set(MEANS)
    seeds = [(t.params["optimizer"], t.params["seed"]) for t in trials]
    assert len(seeds) == len(set(seeds))  # no seed twice in a group
    lines = racing.verdict_lines(state)
    assert sequential.METHOD in lines[0]
    assert "optimizer=adamax better than optimizer=rmsprop" in "\n".join(lines)


def test_no_difference_runs_to_the_cap_inconclusive():
    spec = _raced("race=true", "max_seeds=5")
    race = racing.Race(spec)
    rng = np.random.default_rng(2)
    trials = [
        _trial(o, s, 0.45 + rng.normal(0, 0.02), 0.5 + rng.normal(0, 0.02))
        for o in MEANS
        for s in range(5)
    ]
    rounds = [{"seed": s, "groups": [[["optimizer", o]] for o in MEANS]} for s in (3, 4)]
    state = race.state(trials, rounds)
    assert state.over and state.next_round is None
    assert len(state.looks) == 3  # the starting seeds and two rounds
    verdicts = "\n".join(racing.verdict_lines(state))
    assert "adamax vs rmsprop on val_accuracy: inconclusive" in verdicts


def test_a_failed_trial_breaks_its_pair_and_the_comparison_says_welch():
    spec = _raced("race=true", "max_seeds=10")
    state, _ = _race(spec, noise=0.03, rng=np.random.default_rng(3), fail=("rmsprop", 1))
    first = state.looks[0][0]
    assert not first.look.paired and "Welch, 3 vs 2 seeds" in first.interval.test
    assert "(Welch)" in first.line()


def test_a_round_still_running_plans_nothing():
    spec = _raced("race=true")
    race = racing.Race(spec)
    trials = [_trial(o, s, MEANS[o], 1 - MEANS[o]) for o in MEANS for s in (0, 1, 2)]
    trials[-1] = _trial("rmsprop", 2, 0.4, 0.6, state="RUNNING")
    assert race.state(trials, []).next_round is None


def test_racing_changes_the_fingerprint_and_a_study_run_without_it_keeps_its_own():
    from experiments.settings.fingerprint import make_fingerprint

    cfg, profile = config.compose(["study=optimizers"])
    spec = load_study("optimizers").for_profile(profile, cfg.trainer.epochs)
    plain = make_fingerprint(cfg, racing.raced(cfg, spec), 1.0, "k" * 16)
    stored = {k: v for k, v in plain.values.items() if k not in ("race", "max_seeds")}
    assert plain.differences(stored) == []  # stored before racing existed: adopted
    assert plain.adopting(stored).values == stored
    raced_cfg = config.with_values(cfg, {"race": True})
    raced = make_fingerprint(raced_cfg, racing.raced(raced_cfg, spec), 1.0, "k" * 16)
    changed = raced.differences(plain.values)
    assert any(line.startswith("race False -> True") for line in changed)
    assert any(line.startswith("study.space") for line in changed)  # seeds up to the cap


# --- real races through the command -------------------------------------------------------
RACE = ["study=losses", "profile=smoke", "race=true", "max_seeds=3"]
HEADS = ("classification", "mse")


def _head_seeds(runs_dir: Path) -> list[tuple[str, int]]:
    return sorted(
        (t.params["loss"], t.params["seed"])
        for t in load_trials(runs_dir, "losses")
        if t.state.name == "COMPLETE"
    )


def test_smoke_race_runs_rounds_to_the_cap_and_records_each_round(tmp_path):
    result = run_cli(*RACE, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout + result.stderr
    for index in range(3):
        assert f"race round {index}: seeds a group: " in out
    assert "next: seed 1 for loss=classification, loss=mse" in out
    assert f"verdicts by {sequential.METHOD}" in out
    assert "mse vs classification on delta_e2000: " in out
    assert _head_seeds(tmp_path) == [(h, s) for h in HEADS for s in range(3)]
    runs = mlflow_runs(tmp_path, "losses")
    parent = runs[runs["tags.colorize.role"] == "study"].iloc[0]
    client = MlflowClient()
    history = client.get_metric_history(parent.run_id, "race.mse_vs_classification.seeds")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0), (2, 3.0)]
    record = json.loads(Path(client.download_artifacts(parent.run_id, "race.json")).read_text())
    assert record["method"] == sequential.METHOD and len(record["looks"]) == 3
    assert [r["seed"] for r in record["rounds"]] == [1, 2]
    # the report: the intervals over rounds, and the race's sentence beside the verdicts
    from experiments.report.build import build_report
    from experiments.report.comparisons import comparison_for
    from experiments.report.stored_study import load_study_records

    stored = load_study_records("losses", str(tmp_path))
    ((title, _, png),) = comparison_for(stored).figures_of(stored, tmp_path)
    assert title == "The race: each comparison's interval over 2 round(s)" and png.stat().st_size
    report = build_report(stored, tmp_path / "reports")
    assert report.files[0].suffix == ".pdf" and report.files[0].stat().st_size
    notes = " ".join(comparison_for(stored).tables(stored)[0].notes)
    assert "Raced: mse vs classification (delta_e2000)" in notes and sequential.METHOD in notes
    # the finding the race judged takes the race's repeated interval, not a fixed one
    from experiments.report.comparisons import losses

    (delta,) = [v for v in losses.verdicts(stored) if "ΔE2000" in v.finding]
    assert sequential.METHOD in delta.evidence and "raced to 3 seeds" in delta.evidence
    assert "judged by the race (its verdicts follow)" in result.stdout
    assert "beyond seed noise" not in result.stdout and "within seed noise" not in result.stdout


def test_race_killed_mid_round_resumes_without_repeating_a_seed(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", *RACE, f"runs_dir={tmp_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, killed whole
    )
    deadline = time.monotonic() + 300
    for line in process.stdout:  # the first round is queued, and its first trial runs
        if "seed=1 started" in line:
            break
        assert time.monotonic() < deadline, "the race did not reach its first round in time"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    result = run_cli(*RACE, f"runs_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert _head_seeds(tmp_path) == [(h, s) for h in HEADS for s in range(3)]
    started = [t for t in load_trials(tmp_path, "losses") if t.state.name != "FAIL"]
    pairs = [(t.params["loss"], t.params["seed"]) for t in started]
    assert len(pairs) == len(set(pairs))  # the killed trial was retried, no seed run twice
    assert "race over after 2 round(s)" in result.stdout


def test_two_workers_race_one_study_on_postgresql_without_adding_a_seed_twice(tmp_path):
    import optuna

    from tests.servers import create_database, postgres_server

    with postgres_server() as (host, port, user):
        storage = create_database(host, port, user, "optuna")
        result = run_cli(*RACE, "workers=2", f"storage={storage}", f"runs_dir={tmp_path}")
        assert result.returncode == 0, result.stderr[-3000:]
        study = optuna.load_study(study_name="losses", storage=storage)
        trials = [t for t in study.get_trials() if not t.user_attrs.get("surplus")]
        pairs = sorted((t.params["loss"], t.params["seed"]) for t in trials)
        assert pairs == [(h, s) for h in HEADS for s in range(3)]  # each seed of each head once
        assert all(t.state.name == "COMPLETE" for t in trials)
        rounds = {k: v for k, v in study.user_attrs.items() if k.startswith("race_round_")}
        assert sorted(rounds) == ["race_round_001", "race_round_002"]
        assert [rounds[k]["seed"] for k in sorted(rounds)] == [1, 2]
        assert f"verdicts by {sequential.METHOD}" in result.stdout


def _race_with(entries: list[dict]) -> dict:
    return {"method": sequential.METHOD, "looks": [[entry] for entry in entries]}


def _look(decided: bool, low: float | None, high: float | None, metric="val_accuracy") -> dict:
    return {
        "comparison": "adamax vs rmsprop", "metric": metric, "a": "optimizer=adamax",
        "b": "optimizer=rmsprop", "seeds": 4 if decided else 10, "difference": 5.0,
        "low": low, "high": high, "decided": decided, "test": "paired repeated t-interval",
    }  # fmt: skip


@pytest.mark.fast
def test_a_raced_finding_takes_the_race_interval_of_the_look_that_decided_it():
    from experiments.report.race import raced_interval

    decided_then_more = _race_with([_look(False, -9.0, 19.0), _look(True, 0.5, 9.5)])
    raced = raced_interval(None, "adamax vs rmsprop", "val_accuracy", decided_then_more)
    interval = raced["interval"]
    assert (interval.low, interval.high, interval.sign()) == (0.5, 9.5, 1)
    assert "raced to 4 seeds" in interval.test and sequential.METHOD in interval.test
    # undecided at the cap: inconclusive even where the last interval happens to exclude zero
    at_cap = _race_with([_look(False, 0.1, 9.9)])
    assert (
        raced_interval(None, "adamax vs rmsprop", "val_accuracy", at_cap)["interval"].sign() == 0
    )
    # a study that did not race it, or raced another metric: the finding keeps its own test
    assert raced_interval(None, "adamax vs rmsprop", "val_loss", at_cap) is None
    assert raced_interval(None, "best vs runner-up", "val_accuracy", at_cap) is None
