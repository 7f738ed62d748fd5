"""The raced comparisons' repeated intervals (`colorize.sequential`): simulated races, numpy only.

Thousands of races with no true difference decide at most 5 % of the time over all their looks
(where looking with an ordinary 95 % interval after every round decides far more often); with a
difference of the paper's size they decide in fewer seeds on average than a fixed design of the
same level and power; paired where the groups share their seeds, Welch where they do not.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

from colorize import sequential
from colorize.stats import MIN_N

MAX_SEEDS = 10
RACES = 40_000
LOOKS = tuple(range(MIN_N, MAX_SEEDS + 1))  # a look after each round of one more seed


def _tolerance(rate: float, races: int) -> float:
    """Three standard errors of a simulated rate: the simulation's own noise."""
    return 3 * math.sqrt(rate * (1 - rate) / races)


def _paired_races(differences: np.ndarray, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Whether each race (a row of per-seed differences) decided, and the seeds it used."""
    decided = np.zeros(len(differences), dtype=bool)
    used = np.full(len(differences), LOOKS[-1])
    for bound, n in zip(bounds, LOOKS, strict=True):
        x = differences[:, :n]
        t = x.mean(axis=1) / (x.std(axis=1, ddof=1) / math.sqrt(n))
        now = (np.abs(t) >= bound) & ~decided
        used[now] = n
        decided |= now
    return decided, used


def _paired_bounds():
    return sequential.t_bounds(tuple((True, n, n) for n in LOOKS), MAX_SEEDS)


def test_no_true_difference_decides_at_most_5_percent_over_all_looks():
    rng = np.random.default_rng(7)
    differences = rng.normal(0.0, 4.0, (RACES, MAX_SEEDS))  # points; the seed spread
    decided, _ = _paired_races(differences, _paired_bounds())
    assert decided.mean() <= 0.05 + _tolerance(0.05, RACES)
    # looking with an ordinary 95 % t-interval after every round decides far more often
    naive = [scipy_stats.t.isf(0.025, n - 1) for n in LOOKS]
    naive_decided, _ = _paired_races(differences, naive)
    assert naive_decided.mean() > 0.10


def test_welch_looks_keep_5_percent_where_seeds_differ():
    """Group b lost one seed (a failed trial): Welch at every look, still at most 5 %."""
    looks = tuple((False, n, n - 1) for n in range(MIN_N + 1, MAX_SEEDS + 1))
    bounds = sequential.t_bounds(looks, MAX_SEEDS)
    rng = np.random.default_rng(8)
    a = rng.normal(50.0, 4.0, (RACES, MAX_SEEDS))
    b = rng.normal(50.0, 4.0, (RACES, MAX_SEEDS))
    decided = np.zeros(RACES, dtype=bool)
    for bound, (_, na, nb) in zip(bounds, looks, strict=True):
        va, vb = a[:, :na].var(axis=1, ddof=1) / na, b[:, :nb].var(axis=1, ddof=1) / nb
        t = (a[:, :na].mean(axis=1) - b[:, :nb].mean(axis=1)) / np.sqrt(va + vb)
        decided |= np.abs(t) >= bound
    assert decided.mean() <= 0.05 + _tolerance(0.05, RACES)


def test_race_looks_decide_as_the_boundaries_say():
    """The library's own looks, race by race, agree with the vectorized simulation."""
    rng = np.random.default_rng(9)
    differences = rng.normal(2.0, 4.0, (300, MAX_SEEDS))
    decided, used = _paired_races(differences, _paired_bounds())
    for row, was_decided, seeds in zip(differences, decided, used, strict=True):
        samples = [
            ({s: float(row[s]) for s in range(n)}, dict.fromkeys(range(n), 0.0)) for n in LOOKS
        ]
        looks = sequential.race_looks(samples, MAX_SEEDS)
        first = sequential.decided_at(looks)
        assert (first is not None) == was_decided
        if was_decided:
            assert LOOKS[first] == seeds
            assert looks[first].interval.low > 0 or looks[first].interval.high < 0


def test_a_difference_of_the_papers_size_decides_in_fewer_seeds_than_a_fixed_design():
    """Adamax 5 points above RMSprop, a seed spread of about 4 points: the race decides in
    fewer seeds on average than the fixed design of the same level and power needs."""
    rng = np.random.default_rng(10)
    differences = rng.normal(5.0, 4.0, (RACES, MAX_SEEDS))
    decided, used = _paired_races(differences, _paired_bounds())
    power = decided.mean()
    assert power > 0.85
    effect = 5.0 / 4.0

    def fixed_power(n: int) -> float:
        critical = scipy_stats.t.isf(0.025, n - 1)
        shift = effect * math.sqrt(n)
        return float(
            scipy_stats.nct.sf(critical, n - 1, shift)
            + scipy_stats.nct.cdf(-critical, n - 1, shift)
        )

    fixed_n = next(n for n in range(MIN_N, 100) if fixed_power(n) >= power - 0.01)
    assert used.mean() < fixed_n - 1  # e.g. 7.5 seeds against 9


def test_shared_seeds_are_paired_and_a_broken_pair_falls_back_to_welch():
    # per-seed values that move together (the same initial weights and data order)
    seed_effect = {s: 10.0 * math.sin(s) for s in range(6)}
    a = {s: 50.0 + seed_effect[s] + 0.3 * (s % 2) for s in range(6)}
    b = {s: 45.0 + seed_effect[s] - 0.3 * (s % 3) for s in range(6)}
    (paired,) = sequential.race_looks([(a, b)], MAX_SEEDS)
    assert paired.paired and "paired over 6 shared seeds" in paired.interval.test
    assert sequential.METHOD in paired.interval.test
    assert paired.interval.sign() == 1  # the seed noise cancels in the differences
    broken = dict(b)
    del broken[5]  # its trial failed
    (welch,) = sequential.race_looks([(a, broken)], MAX_SEEDS)
    assert not welch.paired and "Welch, 6 vs 5 seeds" in welch.interval.test
    assert welch.interval.sign() == 0  # the seed noise is back in the groups' spread
    assert welch.interval.high - welch.interval.low > paired.interval.high - paired.interval.low


def test_too_few_seeds_and_looks_without_new_seeds_decide_nothing():
    a = {0: 1.0, 1: 2.0}
    (early,) = sequential.race_looks([(a, {0: 0.0, 1: 0.5})], MAX_SEEDS)
    assert not early.counted and "fewer than 3" in early.interval.test
    three = ({0: 9.0, 1: 9.5, 2: 9.2}, {0: 0.0, 1: 0.1, 2: 0.3})
    first, again = sequential.race_looks([three, three], MAX_SEEDS)
    assert first.counted and not again.counted  # the same seeds: no new look, nothing spent
    assert again.interval.sign() == 0


def test_spending_is_obrien_fleming_type():
    assert abs(sequential.spent(1.0) - 0.05) < 1e-12
    assert sequential.spent(0.3) < 0.001 < sequential.spent(0.6) < sequential.spent(0.9) < 0.05
    assert sequential.spent(0.0) == 0.0
