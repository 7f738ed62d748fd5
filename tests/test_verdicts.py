"""Every verdict of the report, on real MLflow stores written by the study's own tracker with
chosen metrics (no training): each outcome of each verdict, its word and its numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.report.comparisons import epochs, optimizers
from experiments.report.stored_study import load_study_records
from experiments.stores.store_urls import default_tracking_uri
from experiments.tracking import Tracker


def welch(a, b) -> tuple[float, float, float]:
    """(difference, low, high) of the 95 % Welch interval, from its formula: Welch-Satterthwaite
    degrees of freedom and Student's t quantile (not the project's `colorize.stats`)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    difference = a.mean() - b.mean()
    return difference, difference - half, difference + half


def shown(interval: tuple[float, float, float], digits: int) -> str:
    """An interval as the report writes it: '+0.030 (95 % CI +0.029 to +0.031;'."""
    difference, low, high = interval
    return f"{difference:+.{digits}f} (95 % CI {low:+.{digits}f} to {high:+.{digits}f};"


def write_study(runs_dir, study: str, trials: list[dict]) -> None:
    """A parent run and one finished trial run per dict: `params` (incl. `space` values),
    `metrics`, and `val_loss` (a per-epoch curve)."""
    tracker = Tracker(default_tracking_uri(runs_dir), study, runs_dir, "optuna")
    tracker.start_study_run("test storage", study, "f" * 16)
    tracker.log_study_setup(
        "", {"metric": "val_loss", "direction": "minimize", "profile": "test",
             "total_trials": len(trials)}, {}, {},
    )  # fmt: skip
    for number, trial in enumerate(trials):
        space = trial["space"]
        params = {"patience": 3, "image_size": 16, **trial.get("params", {})}
        run_id = tracker.start_trial_run(number, params, space, "")
        curve = trial["val_loss"]
        history = {"val_loss": curve, "loss": curve, "accuracy": [0.5] * len(curve),
                   "val_accuracy": [0.5] * len(curve)}  # fmt: skip
        tracker.log_history(run_id, history)
        best = int(np.argmin(curve))
        tracker.log_metrics(
            run_id,
            {"best_val_loss": curve[best], "best_epoch": best + 1, "epochs_run": len(curve),
             "best_val_accuracy": trial.get("accuracy", 0.5)},
        )  # fmt: skip
        tracker.end_trial_run(run_id, "COMPLETE")
    tracker.end_study_run("FINISHED")


def optimizer_trials(accuracies: dict[str, list[float]]) -> list[dict]:
    return [
        {
            "space": {"optimizer": name, "seed": seed},
            "params": {"optimizer": name, "seed": seed, "epochs": 5},
            "accuracy": value / 100,
            "val_loss": [0.05, 0.04],
        }
        for name, values in accuracies.items()
        for seed, value in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("adamax", "rmsprop", "word"),
    [
        ([60.0, 61.0, 62.0], [55.0, 56.0, 55.5], "reproduced"),
        ([50.0, 51.0, 50.5], [55.0, 56.0, 55.5], "not reproduced"),
        ([55.0, 60.0, 50.0], [54.0, 59.0, 51.0], "inconclusive"),
        ([60.0, 61.0], [50.0, 51.0], "inconclusive"),  # two seeds: no test by rule
    ],
)
def test_optimizer_verdict_rests_on_a_welch_interval_of_seeds(tmp_path, adamax, rmsprop, word):
    write_study(tmp_path, "optimizers", optimizer_trials(
        {"adamax": adamax, "adam": [57.0] * len(adamax), "rmsprop": rmsprop}
    ))  # fmt: skip
    (verdict,) = optimizers.verdicts(load_study_records("optimizers", str(tmp_path)))
    assert verdict.word == word
    gap = np.mean(adamax) - np.mean(rmsprop)
    assert f"Adamax minus RMSprop mean validation accuracy: {gap:+.2f} points" in verdict.evidence
    if len(adamax) >= 3:
        ci = scipy_stats.ttest_ind(adamax, rmsprop, equal_var=False).confidence_interval(0.95)
        assert f"95 % CI {ci.low:+.2f} to {ci.high:+.2f} points" in verdict.evidence
        assert "Welch t-interval, 3 vs 3 seeds" in verdict.evidence
    else:
        assert "fewer than 3" in verdict.evidence
    assert "paper: about +5 points" in verdict.evidence


def epoch_trials(curves: dict[int, list[list[float]]]) -> list[dict]:
    """One trial per budget and seed, each with its validation-loss curve."""
    return [
        {
            "space": {"epochs": budget, "seed": seed},
            "params": {"epochs": len(curve), "seed": seed, "optimizer": "adamax"},
            "val_loss": curve,
        }
        for budget, per_seed in curves.items()
        for seed, curve in enumerate(per_seed)
    ]


def shaped(lowest: float, rise: float, length: int, seed: int) -> list[float]:
    """A curve falling to `lowest` then rising by `rise` (relative) at its end, a bit per seed."""
    low = lowest * (1 + 0.01 * seed)
    rise = rise * (1 + 0.1 * seed) + 0.002 * seed
    down = list(np.linspace(low * 3, low, length - 2))
    return [*down, low * (1 + rise / 2), low * (1 + rise)]


def write_epochs(tmp_path, low: dict[int, float], rise: dict[int, float]):
    lengths = {100: 6, 500: 10, 600: 12, 1000: 14}  # each budget trained a different run
    curves = {b: [shaped(low[b], rise[b], lengths[b], s) for s in range(3)] for b in lengths}
    write_study(tmp_path, "epochs", epoch_trials(curves))
    return {
        v.finding.split(" (")[0]: v
        for v in epochs.verdicts(load_study_records("epochs", str(tmp_path)))
    }


def test_epoch_verdicts_reproduced(tmp_path):
    found = write_epochs(
        tmp_path,
        {100: 0.05, 500: 0.02, 600: 0.03, 1000: 0.035},
        {100: 0.0, 500: 0.0, 600: 0.3, 1000: 0.4},
    )
    assert [v.word for v in found.values()] == ["reproduced"] * 3
    underfit = found["100 epochs underfit"]
    # each seed's lowest validation loss is `lowest * (1 + 0.01 * seed)` (`shaped`)
    lowest = {b: [low * (1 + 0.01 * s) for s in range(3)] for b, low in ((100, 0.05), (500, 0.02))}
    expected = shown(welch(lowest[100], lowest[500]), 5)
    assert f"Budget 100 minus 500: {expected} Welch t-interval, 3 vs 3 seeds)" in underfit.evidence
    # budgets 600 and 1000 rise by 30 % and 40 % (each seed a bit more): `shaped` again
    rose = found["validation loss rose after its lowest epoch at 600 and 1000"].evidence
    for budget, rise in ((600, 0.3), (1000, 0.4)):
        rises = np.array([rise * (1 + 0.1 * s) + 0.002 * s for s in range(3)]) - 0.05
        half = 4.302653 * rises.std(ddof=1) / math.sqrt(3)  # t_{0.975, 2 df}, from a table
        expected = shown((rises.mean(), rises.mean() - half, rises.mean() + half), 3)
        assert f"budget {budget}: mean rise minus 5% {expected}" in rose


def test_epoch_verdicts_not_reproduced(tmp_path):
    found = write_epochs(
        tmp_path,
        {100: 0.02, 500: 0.05, 600: 0.03, 1000: 0.03},
        {100: 0.0, 500: 0.0, 600: 0.0, 1000: 0.0},
    )
    assert [v.word for v in found.values()] == ["not reproduced"] * 3
    rose = found["validation loss rose after its lowest epoch at 600 and 1000"]
    # rises 0, 0.002, 0.004 (`shaped`): mean 0.002 - 0.05 = -0.048, sd 0.002, 2 df
    half = 4.302653 * 0.002 / math.sqrt(3)  # 0.004968
    expected = shown((-0.048, -0.048 - half, -0.048 + half), 3)
    assert expected == "-0.048 (95 % CI -0.053 to -0.043;"
    assert f"budget 600: mean rise minus 5% {expected}" in rose.evidence


def test_epoch_verdicts_inconclusive_when_seeds_disagree(tmp_path):
    lengths = {100: 6, 500: 10, 600: 12, 1000: 14}
    noisy = {0: 0.02, 1: 0.05, 2: 0.035}
    curves = {b: [shaped(noisy[(s + i) % 3], 0.05 * s, lengths[b], 0) for s in range(3)]
              for i, b in enumerate(lengths)}  # fmt: skip
    write_study(tmp_path, "epochs", epoch_trials(curves))
    found = epochs.verdicts(load_study_records("epochs", str(tmp_path)))
    assert [v.word for v in found] == ["inconclusive"] * 3


def test_budgets_that_collapsed_into_one_run_are_said_to_and_decide_nothing(tmp_path):
    same = [shaped(0.02, 0.1, 8, s) for s in range(3)]  # early stopping ended every budget alike
    write_study(tmp_path, "epochs", epoch_trials({100: [shaped(0.05, 0, 6, s) for s in range(3)],
                                                  500: same, 600: same, 1000: same}))  # fmt: skip
    found = epochs.verdicts(load_study_records("epochs", str(tmp_path)))
    assert found[0].word == "reproduced"  # 100 differs from 500: it can be tested
    for verdict in found[1:]:
        assert verdict.word == "inconclusive"
        assert (
            "budgets 500 and 600, 500 and 1000, 600 and 1000 collapsed into the same run"
            in verdict.evidence
        )


def test_the_best_setting_is_better_than_the_runner_up_only_beyond_seed_noise():
    from experiments.analysis.ranking import rank

    clear = [{"optimizer": o, "seed": s, "value": v + 0.001 * s}
             for o, v in (("adamax", 0.01), ("adam", 0.02)) for s in range(3)]  # fmt: skip
    found = rank(clear, "minimize")
    assert found.best == {"optimizer": "adamax"} and found.word == "better than the runner-up"
    assert "beyond seed noise" in found.sentence("val_loss")
    # best minus runner-up: -0.01; both spreads 0.001, so se = sqrt(2e-6 / 3), 4 df
    half = 2.776445 * math.sqrt(2e-6 / 3)  # t_{0.975, 4 df} from a table: 0.002267
    assert f"difference {shown((-0.01, -0.01 - half, -0.01 + half), 4)}" in found.sentence("v")
    assert (found.interval.low, found.interval.high) == pytest.approx(
        (-0.01 - half, -0.01 + half), abs=1e-7
    )
    single = [{"kernel_size": k, "value": v} for k, v in ((3, 0.01), (5, 0.02))]
    found = rank(single, "minimize")
    assert found.word == "inconclusive" and "within seed noise" in found.sentence("val_loss")


def test_a_study_whose_trials_all_built_says_so_not_that_failures_are_listed_below(tmp_path):
    from experiments.report.comparisons.settings import settings_table

    write_study(tmp_path, "architecture", [
        {"space": {"kernel_size": k, "padding": "same", "strides": 2},
         "params": {"kernel_size": k, "padding": "same", "strides": 2}, "val_loss": [v, v / 2]}
        for k, v in ((3, 0.04), (5, 0.06))
    ])  # fmt: skip
    notes = " ".join(settings_table(load_study_records("architecture", str(tmp_path))).notes)
    assert "every trial could be built and trained" in notes and "listed below" not in notes
