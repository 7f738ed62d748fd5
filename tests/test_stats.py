"""`colorize/stats.py` against intervals worked by hand: the Welch and paired 95 % t-intervals
(difference, degrees of freedom, t quantile from a printed table, half-width), the rules that
make a verdict inconclusive, and the sign a verdict is read from."""

from __future__ import annotations

import math

import pytest

from colorize.stats import MIN_N, Interval, mean_interval, paired_interval, welch_interval

pytestmark = pytest.mark.fast

# two-sided 95 % quantiles of Student's t, from a printed table (t_{0.975, df})
T975 = {2: 4.302653, 3: 3.182446, 4: 2.776445}


def test_welch_interval_with_equal_spreads_matches_the_hand_worked_numbers():
    # a: mean 2, variance 1; b: mean 5, variance 1. Standard error sqrt(1/3 + 1/3) = 0.816497;
    # Welch-Satterthwaite df = (2/3)^2 / ((1/3)^2/2 + (1/3)^2/2) = 4, so t = 2.776445
    found = welch_interval([1, 2, 3], [4, 5, 6], "seeds")
    half = T975[4] * math.sqrt(2 / 3)  # 2.266958
    assert found.difference == pytest.approx(-3.0)
    assert (found.low, found.high) == pytest.approx((-3 - half, -3 + half), abs=1e-6)
    assert (found.low, found.high) == pytest.approx((-5.266958, -0.733042), abs=1e-6)
    assert found.enough and found.sign() == -1
    assert found.test == "Welch t-interval, 3 vs 3 seeds"


def test_welch_interval_with_unequal_spreads_uses_welch_degrees_of_freedom_not_pooled():
    # a: mean 13, variance 20/3 over 4; b: mean 2, variance 1 over 3.
    # s_a^2/n_a = 5/3, s_b^2/n_b = 1/3: standard error sqrt(2) = 1.414214;
    # df = 2^2 / ((5/3)^2/3 + (1/3)^2/2) = 4 / (25/27 + 1/18) = 4.075472
    from scipy.stats import t

    a, b = [10, 12, 14, 16], [1, 2, 3]
    df = 4 / (25 / 27 + 1 / 18)
    assert df == pytest.approx(4.075472, abs=1e-6)
    half = t.ppf(0.975, df) * math.sqrt(2)
    assert T975[4] * 0.99 < t.ppf(0.975, df) < T975[4]  # a little over 4 df: a little below
    found = welch_interval(a, b)
    assert found.difference == pytest.approx(11.0)
    assert (found.low, found.high) == pytest.approx((11 - half, 11 + half), abs=1e-6)
    # the pooled (equal-variance) interval would be wider: s_p^2 = 4.4, df = 5
    pooled_half = 2.570582 * math.sqrt(4.4 * (1 / 4 + 1 / 3))
    assert found.high - found.low < 2 * pooled_half - 0.1
    assert welch_interval(b, a).difference == pytest.approx(-11.0)  # a - b, not b - a


def test_paired_interval_matches_the_hand_worked_numbers():
    # differences 1, 2, 1, 3: mean 1.75, sd sqrt(2.75/3) = 0.957427, se 0.478714, df 3
    found = paired_interval([5, 7, 9, 6], [4, 5, 8, 3], "photos")
    half = T975[3] * math.sqrt(2.75 / 3) / 2  # 1.523480
    assert found.difference == pytest.approx(1.75)
    assert (found.low, found.high) == pytest.approx((1.75 - half, 1.75 + half), abs=1e-6)
    assert (found.low, found.high) == pytest.approx((0.226520, 3.273480), abs=1e-6)
    assert found.enough and found.sign() == 1
    assert found.test == "paired t-interval over 4 photos"
    # the same numbers unpaired overlap too much to exclude zero: pairing is what decides
    assert welch_interval([5, 7, 9, 6], [4, 5, 8, 3]).sign() == 0


def test_mean_interval_is_the_interval_of_the_mean_minus_the_threshold():
    # 1, 2, 3 minus 1: mean 1, sd 1, se 1/sqrt(3), df 2
    found = mean_interval([1, 2, 3], threshold=1.0)
    half = T975[2] / math.sqrt(3)  # 2.484138
    assert (found.difference, found.low, found.high) == pytest.approx(
        (1.0, 1 - half, 1 + half), abs=1e-6
    )
    assert found.sign() == 0


def test_too_few_observations_or_no_spread_are_inconclusive_by_rule():
    few = welch_interval([1.0] * (MIN_N - 1), [9.0, 9.1, 9.2], "seeds")
    assert few.difference == pytest.approx(-8.1) and not few.enough and few.sign() == 0
    assert math.isnan(few.low) and few.test == "Welch t-interval, 2 vs 3 seeds: fewer than 3"
    flat = welch_interval([1, 1, 1], [2, 2, 2])
    assert not flat.enough and flat.test.endswith(": no spread") and flat.sign() == 0
    same_gap = paired_interval([3, 4, 5], [1, 2, 3])  # every difference 2: no spread
    assert same_gap.difference == 2 and not same_gap.enough and same_gap.sign() == 0
    empty = welch_interval([], [1, 2, 3])
    assert math.isnan(empty.difference) and empty.test == "no observations to compare"


def test_non_finite_values_are_left_out_pair_by_pair():
    with_nan = paired_interval([5, 7, 9, 6, math.nan], [4, 5, 8, 3, 1.0])
    assert with_nan.test == "paired t-interval over 4 pairs"
    assert with_nan.low == pytest.approx(0.226520, abs=1e-6)
    assert welch_interval([1, 2, 3, math.inf], [4, 5, 6]).low == pytest.approx(-5.266958, abs=1e-6)


def test_sign_and_description_read_the_interval():
    assert Interval(1.0, 0.5, 1.5, "t", True).sign() == 1
    assert Interval(-1.0, -1.5, -0.5, "t", True).sign() == -1
    assert Interval(0.2, -0.1, 0.5, "t", True).sign() == 0
    assert Interval(1.0, 0.5, 1.5, "t", False).sign() == 0  # too few: no verdict
    found = welch_interval([1, 2, 3], [4, 5, 6], "seeds")
    assert found.describe() == "-3.00 (95 % CI -5.27 to -0.73; Welch t-interval, 3 vs 3 seeds)"
    few = welch_interval([1, 2], [4, 5, 6], "seeds")
    assert few.describe(" dB", 1) == "-3.5 dB (Welch t-interval, 2 vs 3 seeds: fewer than 3)"
