"""What the answers say: each model's fool rate (the share of test pairs where the colorized photo
was picked as the original) with its exact 95 % interval, the paper's finding judged by an exact
binomial test, and models compared with Fisher's exact test.

The paper (17 of 18 photos told apart, about 6 % fooled) found that people can tell its
colorizations from the originals. 50 % fooled means people cannot tell at all.

- `reproduced`: the exact (Clopper-Pearson) 95 % interval of the fool rate lies below 50 %: people
  pick the original more often than a coin would (exact binomial test against 50 %, p < 0.05);
- `not reproduced`: the interval lies at or above 40 %: people are fooled nearly as often as a
  coin would fool them, or more (a stated margin of 10 points below chance);
- `inconclusive`: anything else (too few answers to say either).

Participants who missed a catch pair (an original against its gray version) answered at random or
did not look: their answers are counted apart and never in a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from experiments.humantest.protocol import CATCH, TEST

PAPER_TOLD_APART, PAPER_PHOTOS = 17, 18  # the paper's friends told 17 of 18 photos apart
ZHANG_FOOL_RATE = 0.32  # Zhang, Isola & Efros 2016, their full method, 40 participants
CHANCE = 0.5
NOT_REPRODUCED_FROM = 0.4  # fooled at least this often: people cannot reliably tell
LEVEL = 0.95
TEST_NAME = "exact binomial test against 50 % (Clopper-Pearson 95 % interval)"
COMPARISON_TEST = "Fisher's exact test, Holm-adjusted over the pairs of models"


@dataclass(frozen=True)
class FoolRate:
    """Of `answers` test pairs, `fooled` had the colorized photo picked as the original."""

    fooled: int
    answers: int

    @property
    def rate(self) -> float:
        return self.fooled / self.answers if self.answers else float("nan")

    def interval(self) -> tuple[float, float]:
        """The exact (Clopper-Pearson) 95 % interval of the rate."""
        if not self.answers:
            return 0.0, 1.0
        from scipy.stats import binomtest

        ci = binomtest(self.fooled, self.answers).proportion_ci(LEVEL, method="exact")
        return float(ci.low), float(ci.high)

    def p_value(self) -> float:
        """Two-sided exact binomial test of the rate against 50 %."""
        if not self.answers:
            return 1.0
        from scipy.stats import binomtest

        return float(binomtest(self.fooled, self.answers, CHANCE).pvalue)

    def verdict(self) -> str:
        low, high = self.interval()
        if self.answers and high < CHANCE:
            return "reproduced"
        if self.answers and low >= NOT_REPRODUCED_FROM:
            return "not reproduced"
        return "inconclusive"

    def shown(self) -> str:
        if not self.answers:
            return "no answers yet"
        low, high = self.interval()
        return (
            f"{100 * self.rate:.1f} % fooled ({self.fooled} of {self.answers}; 95 % CI "
            f"{100 * low:.1f} to {100 * high:.1f} %)"
        )


def paper_rate() -> FoolRate:
    return FoolRate(PAPER_PHOTOS - PAPER_TOLD_APART, PAPER_PHOTOS)


def flagged_participants(answers: pd.DataFrame) -> set[str]:
    """Participants who picked the gray photo on any catch pair."""
    catches = answers[answers["kind"] == CATCH]
    return set(catches.loc[catches["picked_original"] == 0, "participant"])


def counted(answers: pd.DataFrame, flagged: set[str]) -> pd.DataFrame:
    """The test answers a verdict rests on: no practice, no catch, no flagged participant."""
    rows = answers[(answers["kind"] == TEST) & ~answers["participant"].isin(flagged)]
    return rows.assign(fooled=1 - rows["picked_original"])


def rate_of(rows: pd.DataFrame) -> FoolRate:
    return FoolRate(int(rows["fooled"].sum()), len(rows))


def model_table(answers: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row a model: participants, answers, fooled, the rate and its interval, the p-value
    against 50 % and the verdict on the paper's finding; then the flagged participants'."""
    flagged = flagged_participants(answers)
    rows = counted(answers, flagged)
    records = []
    for model in models:
        mine = rows[rows["model"] == model]
        records.append(_record(model, mine, rate_of(mine), verdict=True))
    apart = answers[(answers["kind"] == TEST) & answers["participant"].isin(flagged)]
    if len(apart):
        apart = apart.assign(fooled=1 - apart["picked_original"])
        records.append(_record("flagged (missed a catch pair)", apart, rate_of(apart), False))
    return pd.DataFrame(records)


def _record(label: str, rows: pd.DataFrame, rate: FoolRate, verdict: bool) -> dict:
    low, high = rate.interval()
    return {
        "model": label,
        "participants": rows["participant"].nunique(),
        "answers": rate.answers,
        "fooled": rate.fooled,
        "fool_rate": rate.rate,
        "ci_low": low,
        "ci_high": high,
        "p_vs_chance": rate.p_value(),
        "verdict": rate.verdict() if verdict else "not counted",
    }


def photo_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Fool rate of each model on each test photo (counted answers only)."""
    rows = counted(answers, flagged_participants(answers))
    if rows.empty:
        return pd.DataFrame(columns=["model", "photo", "answers", "fooled", "fool_rate"])
    table = rows.groupby(["model", "photo"])["fooled"].agg(answers="count", fooled="sum")
    table = table.reset_index()
    return table.assign(fool_rate=table["fooled"] / table["answers"])


@dataclass(frozen=True)
class Comparison:
    """Two models' fool rates compared."""

    first: str
    second: str
    first_rate: FoolRate
    second_rate: FoolRate
    p_value: float
    p_adjusted: float
    difference: tuple[float, float, float]  # first minus second, with Newcombe's 95 % interval

    def verdict(self) -> str:
        if self.p_adjusted < 1 - LEVEL:
            more, less = (
                (self.first, self.second) if self.difference[0] > 0 else (self.second, self.first)
            )
            return f"{more} fools people more often than {less}"
        return "inconclusive"

    def sentence(self) -> str:
        if not (self.first_rate.answers and self.second_rate.answers):
            return f"{self.first} against {self.second}: inconclusive (no answers yet for both)"
        estimate, low, high = self.difference
        return (
            f"{self.first} against {self.second}: {self.verdict()} ({100 * estimate:+.1f} "
            f"points, 95 % CI {100 * low:+.1f} to {100 * high:+.1f}; {COMPARISON_TEST}, "
            f"p = {self.p_adjusted:.3g})"
        )


def newcombe_interval(a: FoolRate, b: FoolRate) -> tuple[float, float, float]:
    """The difference of two rates with Newcombe's hybrid score interval (from each rate's
    Wilson interval), which keeps its level with few answers."""
    from scipy.stats import binomtest

    def wilson(rate: FoolRate) -> tuple[float, float]:
        if not rate.answers:
            return 0.0, 1.0
        ci = binomtest(rate.fooled, rate.answers).proportion_ci(LEVEL, method="wilson")
        return float(ci.low), float(ci.high)

    (l1, u1), (l2, u2) = wilson(a), wilson(b)
    p1 = a.rate if a.answers else 0.5
    p2 = b.rate if b.answers else 0.5
    estimate = p1 - p2
    low = estimate - ((p1 - l1) ** 2 + (u2 - p2) ** 2) ** 0.5
    high = estimate + ((u1 - p1) ** 2 + (p2 - l2) ** 2) ** 0.5
    return estimate, max(-1.0, low), min(1.0, high)


def compare_models(answers: pd.DataFrame, models: list[str]) -> list[Comparison]:
    """Every pair of models, Fisher's exact test on their fooled / not fooled counts, with
    Holm's adjustment so that the chance of any false verdict stays at 5 %."""
    rows = counted(answers, flagged_participants(answers))
    return compare_rates({model: rate_of(rows[rows["model"] == model]) for model in models})


def compare_rates(rates: dict[str, FoolRate]) -> list[Comparison]:
    """`compare_models` on each model's counts."""
    from scipy.stats import fisher_exact

    models = list(rates)
    raw = []
    for first, second in combinations(models, 2):
        a, b = rates[first], rates[second]
        table = [[a.fooled, a.answers - a.fooled], [b.fooled, b.answers - b.fooled]]
        p = float(fisher_exact(table).pvalue) if a.answers and b.answers else 1.0
        raw.append((first, second, p))
    order = sorted(range(len(raw)), key=lambda i: raw[i][2])
    adjusted = [1.0] * len(raw)
    running = 0.0
    for rank, index in enumerate(order):  # Holm: step down, kept monotone
        running = max(running, min(1.0, (len(raw) - rank) * raw[index][2]))
        adjusted[index] = running
    return [
        Comparison(
            first,
            second,
            rates[first],
            rates[second],
            p,
            adjusted[index],
            newcombe_interval(rates[first], rates[second]),
        )  # fmt: skip
        for index, (first, second, p) in enumerate(raw)
    ]


def paper_sentence(model: str, rate: FoolRate) -> str:
    """The verdict sentence on the paper's finding for one model."""
    paper = paper_rate()
    return (
        f"people tell {model}'s colorizations from the originals (the paper: "
        f"{PAPER_TOLD_APART} of {PAPER_PHOTOS} told apart, {100 * paper.rate:.0f} % fooled): "
        f"{rate.verdict()} ({rate.shown()}; {TEST_NAME})"
    )
