"""Intervals that stay at 95 % however often a race looks: a group-sequential design.

A raced comparison is judged after every round of seeds. Judging each look with an ordinary
95 % interval would decide falsely far more than 5 % of the time (every look is another chance),
so each look uses a *repeated confidence interval* (Jennison & Turnbull) from a group-sequential
design: O'Brien-Fleming-type Lan-DeMets alpha spending, alpha(t) = 2 - 2 Phi(z_{0.975} / sqrt(t)),
where t is the share of the comparison's largest design (`max_n` seeds a group) seen so far.
Early looks spend almost nothing (they decide only on a large difference), the last look nearly
the whole 5 %. The boundaries are on the look's t statistic (the seed spread is estimated from a
few seeds), for the looks as they happened (a look skipped or a pair lost is accounted for),
and found by simulating the t statistics under no difference, whose joint law does not depend
on the spread. A simulation in the tests checks that the false-decision rate over all looks
stays at 5 %.

Paired when both groups have the same seeds (the same initial weights and data order: the
per-seed differences are judged), Welch when their seeds differ (a failed or pruned trial
breaks its pair), and the interval says which.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from colorize.stats import LEVEL, MIN_N, Interval

METHOD = "O'Brien-Fleming-type alpha spending (Lan-DeMets), repeated t-intervals"
SIMULATIONS = 200_000  # simulated races behind each set of boundaries
SIMULATION_SEED = 20_240_601  # fixed: the same looks always get the same boundaries


def spent(fraction: float, alpha: float = 1 - LEVEL) -> float:
    """The share of `alpha` spent by information `fraction` (0..1): O'Brien-Fleming-type."""
    from scipy.stats import norm

    if fraction <= 0:
        return 0.0
    fraction = min(fraction, 1.0)
    return float(2 - 2 * norm.cdf(norm.isf(alpha / 2) / math.sqrt(fraction)))


@functools.lru_cache(maxsize=1024)
def t_bounds(
    looks: tuple[tuple[bool, int, int], ...], max_n: int, alpha: float = 1 - LEVEL
) -> tuple[float, ...]:
    """Boundaries |T_k| >= c_k on the t statistics of a comparison's looks, each look spending
    its share of `alpha` (`spent`) under no difference.

    Args:
        looks: per look, (paired, seeds in a, seeds in b), with growing information.
        max_n: the design's seeds a group at most.
        alpha: what all looks together may spend.

    The t statistics' joint law under no difference does not depend on the seed spread when
    paired (nor, nearly, with Welch), so the boundaries are found by simulating it once
    (`SIMULATIONS` races of normal seeds, a fixed random seed): at each look, the boundary
    that the races not yet decided cross with the look's share of alpha.
    """
    most = max(max(na, nb) for _, na, nb in looks)
    # each seed's column drawn on its own: a look's boundary is the same however many looks
    # follow it, so a boundary used at one round is the one assumed at the next
    a, b = (
        np.stack(
            [
                np.random.default_rng([SIMULATION_SEED, group, seed]).standard_normal(SIMULATIONS)
                for seed in range(most)
            ],
            axis=1,
        )
        for group in (0, 1)
    )
    going = np.ones(SIMULATIONS, dtype=bool)
    bounds: list[float] = []
    used = 0.0
    for paired, na, nb in looks:
        if paired:
            differences = a[:, :na] - b[:, :na]
            se = differences.std(axis=1, ddof=1) / math.sqrt(na)
            statistic = differences.mean(axis=1) / se
            information = na
        else:
            va, vb = a[:, :na].var(axis=1, ddof=1) / na, b[:, :nb].var(axis=1, ddof=1) / nb
            statistic = (a[:, :na].mean(axis=1) - b[:, :nb].mean(axis=1)) / np.sqrt(va + vb)
            information = 2 * na * nb / (na + nb)
        target = spent(information / max_n, alpha)
        crossings = int(math.floor((target - used) * SIMULATIONS + 1e-9))
        size = np.sort(np.abs(statistic[going]))[::-1]
        if crossings <= 0 or not len(size):
            bound = math.inf
        elif crossings >= len(size):
            bound = 0.0
        else:  # between the crossings-th largest and the next: exactly `crossings` cross
            bound = float((size[crossings - 1] + size[crossings]) / 2)
        crossed = going & (np.abs(statistic) >= bound)
        used += crossed.sum() / SIMULATIONS
        going &= ~crossed
        bounds.append(bound)
    return tuple(bounds)


@dataclass(frozen=True)
class Look:
    """One look of a raced comparison.

    Attributes:
        interval: the repeated 95 % interval of mean(a) - mean(b) at this look.
        n: seeds a group behind it (pairs when paired; the smaller group with Welch).
        fraction: the share of the design's information seen (the spending function's t).
        bound: the look's t boundary (the interval's half-width over its standard error).
        paired: whether per-seed differences were judged.
        counted: whether this was a look of the design (new information since the last one).
    """

    interval: Interval
    n: int
    fraction: float
    bound: float
    paired: bool
    counted: bool


def _estimate(a: Mapping, b: Mapping) -> tuple[float, float, float, int, bool, float, str]:
    """(difference, standard error, degrees of freedom, n, paired, information, words)."""
    a = {k: float(v) for k, v in a.items() if v is not None and math.isfinite(float(v))}
    b = {k: float(v) for k, v in b.items() if v is not None and math.isfinite(float(v))}
    if a and set(a) == set(b):
        seeds = sorted(a)
        differences = np.array([a[s] - b[s] for s in seeds])
        n = len(differences)
        sd = float(differences.std(ddof=1)) if n > 1 else math.nan
        words = f"paired over {n} shared seeds"
        return float(differences.mean()), sd / math.sqrt(n), n - 1, n, True, n, words
    va, vb = np.array(list(a.values())), np.array(list(b.values()))
    na, nb = len(va), len(vb)
    words = f"Welch, {na} vs {nb} seeds (the groups' seeds differ)"
    if not na or not nb:
        return math.nan, math.nan, math.nan, min(na, nb), False, 0.0, words
    difference = float(va.mean() - vb.mean())
    if min(na, nb) < 2:
        return difference, math.nan, math.nan, min(na, nb), False, 0.0, words
    sa, sb = va.var(ddof=1) / na, vb.var(ddof=1) / nb
    se = math.sqrt(sa + sb)
    df = (sa + sb) ** 2 / (sa**2 / (na - 1) + sb**2 / (nb - 1)) if se > 0 else math.nan
    # information relative to n pairs' worth: n*n/(n+n) * 2 = n for equal groups
    information = 2 * na * nb / (na + nb)
    return difference, se, df, min(na, nb), False, information, words


def race_looks(
    samples: Sequence[tuple[Mapping, Mapping]], max_n: int, alpha: float = 1 - LEVEL
) -> list[Look]:
    """The repeated intervals of one comparison over a race's looks.

    Args:
        samples: per look, the two groups' values so far as {seed: value} (cumulative).
        max_n: seeds a group at most (the race's cap): the design's full information.
        alpha: 1 - the level kept over all looks.

    Returns:
        One `Look` per sample. A look counts (spends alpha) when both groups have at least
        `MIN_N` seeds, some spread, and more information than at the last counted look; the
        others repeat the last counted look's boundary and are never decided.
    """
    looks: list[Look] = []
    counted_looks: list[tuple[bool, int, int]] = []
    last = 0.0
    for a, b in samples:
        difference, se, df, n, paired, information, words = _estimate(a, b)
        fraction = min(1.0, information / max_n)
        usable = n >= MIN_N and se > 0 and math.isfinite(df)
        counted = usable and fraction > last + 1e-12
        if counted:
            sizes = (n, n) if paired else (_count(a), _count(b))
            counted_looks.append((paired, *sizes))
            last = fraction
        test = f"{METHOD}, look {len(counted_looks)}, {words}, design of up to {max_n} seeds"
        if not usable or not counted_looks:
            why = f"fewer than {MIN_N} seeds a group" if n < MIN_N else "no spread"
            interval = Interval(difference, math.nan, math.nan, f"{test}: {why}", False)
            looks.append(Look(interval, n, fraction, math.nan, paired, False))
            continue
        bound = t_bounds(tuple(counted_looks), max_n, alpha)[-1]
        low, high = difference - bound * se, difference + bound * se
        interval = Interval(difference, low, high, test, counted)
        looks.append(Look(interval, n, fraction, bound, paired, counted))
    return looks


def _count(values: Mapping) -> int:
    return sum(v is not None and math.isfinite(float(v)) for v in values.values())


def decided_at(looks: Sequence[Look]) -> int | None:
    """The index of the first look whose interval excludes zero (the race stops there)."""
    for index, look in enumerate(looks):
        if look.interval.sign() != 0:
            return index
    return None
