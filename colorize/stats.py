"""The tests behind every verdict the project prints: 95 % t-intervals of a difference.

A verdict is `reproduced`/`better`, `not reproduced`/`worse`, or `inconclusive`: decided by
whether the interval excludes zero, and in which direction. Fewer observations than `MIN_N` (or no
spread to estimate) are inconclusive by rule, whatever the means say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_N = 3  # observations per group below which no interval is trusted
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A difference of means with its 95 % confidence interval.

    Attributes:
        difference: mean(a) - mean(b) (or mean of the paired differences).
        low, high: the interval's ends (NaN when it cannot be computed).
        test: the test, in words, for the report.
        enough: both groups had at least MIN_N observations and some spread.
    """

    difference: float
    low: float
    high: float
    test: str
    enough: bool

    def sign(self) -> int:
        """+1 when the interval lies above zero, -1 below, 0 when it holds zero or is unknown."""
        if not self.enough or math.isnan(self.low):
            return 0
        if self.low > 0:
            return 1
        if self.high < 0:
            return -1
        return 0

    def flipped(self) -> Interval:
        """The same interval for b minus a."""
        return Interval(-self.difference, -self.high, -self.low, self.test, self.enough)

    def describe(self, unit: str = "", digits: int = 2) -> str:
        """'+1.23 (95 % CI +0.45 to +2.01; Welch t-interval, 3 vs 3 seeds)'."""
        if math.isnan(self.low):
            return f"{self.difference:+.{digits}f}{unit} ({self.test})"
        return (
            f"{self.difference:+.{digits}f}{unit} (95 % CI {self.low:+.{digits}f} to "
            f"{self.high:+.{digits}f}{unit}; {self.test})"
        )


def _finite(values) -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    return array[np.isfinite(array)]


def welch_interval(a, b, what: str = "observations") -> Interval:
    """95 % Welch t-interval of mean(a) - mean(b) (unequal variances)."""
    a, b = _finite(a), _finite(b)
    if not len(a) or not len(b):
        return Interval(math.nan, math.nan, math.nan, f"no {what} to compare", False)
    difference = float(a.mean() - b.mean())
    test = f"Welch t-interval, {len(a)} vs {len(b)} {what}"
    if min(len(a), len(b)) < MIN_N:
        return Interval(difference, math.nan, math.nan, f"{test}: fewer than {MIN_N}", False)
    from scipy import stats

    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return Interval(difference, math.nan, math.nan, f"{test}: no spread", False)
    result = stats.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(confidence_level=LEVEL)
    return Interval(difference, float(ci.low), float(ci.high), test, True)


def paired_interval(a, b, what: str = "pairs") -> Interval:
    """95 % t-interval of the mean of the paired differences a - b."""
    pairs = np.asarray(list(zip(a, b, strict=True)), dtype=float).reshape(-1, 2)
    pairs = pairs[np.isfinite(pairs).all(axis=1)]
    differences = pairs[:, 0] - pairs[:, 1]
    if not len(differences):
        return Interval(math.nan, math.nan, math.nan, f"no {what}", False)
    mean = float(differences.mean())
    test = f"paired t-interval over {len(differences)} {what}"
    if len(differences) < MIN_N:
        return Interval(mean, math.nan, math.nan, f"{test}: fewer than {MIN_N}", False)
    if differences.std(ddof=1) == 0:
        return Interval(mean, math.nan, math.nan, f"{test}: no spread", False)
    from scipy import stats

    ci = stats.ttest_1samp(differences, 0.0).confidence_interval(confidence_level=LEVEL)
    return Interval(mean, float(ci.low), float(ci.high), test, True)


def mean_interval(values, threshold: float = 0.0, what: str = "observations") -> Interval:
    """95 % t-interval of mean(values) - threshold."""
    values = _finite(values)
    return paired_interval(values, np.full(len(values), threshold), what)
